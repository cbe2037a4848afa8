// The fleet grid: one tile per stream, a page at a time (the API's keyset cursors), images
// loaded only for tiles near the viewport, and live changes from the tenant room. Each tile
// shows latest.jpg at its own width through a signed URL (one POST /image-urls per page),
// so the browser fetches, caches and decodes the images itself; hot streams refresh often.

import { getJSON } from "./api.js";
import { ago, h, statusBadge } from "./dom.js";

const PAGE_SIZE = 48;
const FIELDS = "id,name,status,kind,tags,enabled,last_error,hot";
const URL_TTL = 3600; // seconds a page's signed URLs live; a tile asks again near the end
const HOT_REFRESH_MS = 2000; // a visible hot stream's tile shows a new frame this often
const WIDTH_STEP = 80; // tile widths round up to this, so tiles share encoded images
const STATUSES = ["", "online", "pending", "error", "disabled"];
const KINDS = ["", "rtsp", "rtmp", "hls", "http", "file"];

export function mountGrid(view, ctx, params) {
  const filters = {
    q: params.get("q") || "", status: params.get("status") || "",
    kind: params.get("kind") || "", tag: params.get("tag") || "",
  };
  const tiles = new Map(); // stream id -> tile
  let cursor = null, done = false, loading = false, generation = 0, fresh = 0;

  const total = h("span", { class: "total" });
  const newer = h("button", { type: "button", class: "quiet", hidden: true, onclick: () => reset() });
  const grid = h("div", { class: "grid", id: "grid" });
  const sentinel = h("div", { class: "sentinel" });
  const message = h("p", { class: "muted" });
  view.replaceChildren(toolbar(), grid, message, sentinel);

  const images = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const tile = tiles.get(entry.target.dataset.id);
      if (!tile) continue;
      tile.visible = entry.isIntersecting;
      if (tile.visible && tile.stale) loadImage(tile);
    }
  }, { rootMargin: "200px" });
  const pager = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadPage();
  }, { rootMargin: "600px" });
  const ticker = setInterval(() => tiles.forEach(showAge), 5000);
  const hotTicker = setInterval(() => tiles.forEach((t) => { if (t.hot && t.visible) loadImage(t); }), HOT_REFRESH_MS);
  ctx.bus.addEventListener("event", onEvent);
  ctx.bus.addEventListener("resync", reset);
  reset();

  function toolbar() {
    const field = (name, el) => {
      el.value = filters[name];
      el.name = name;
      el.addEventListener(el.tagName === "SELECT" ? "change" : "input", () => {
        filters[name] = el.value.trim();
        clearTimeout(field.timer);
        field.timer = setTimeout(reset, el.tagName === "SELECT" ? 0 : 300);
      });
      return el;
    };
    const options = (values, label) => values.map((v) => h("option", { value: v }, v || label));
    return h("div", { class: "toolbar" },
      field("q", h("input", { type: "search", placeholder: "Search names", maxlength: 200 })),
      field("status", h("select", { "aria-label": "status" }, options(STATUSES, "any status"))),
      field("kind", h("select", { "aria-label": "kind" }, options(KINDS, "any kind"))),
      field("tag", h("input", { type: "search", placeholder: "Tag", maxlength: 50 })),
      total, newer);
  }

  function reset() {
    generation += 1;
    cursor = null; done = false; loading = false; fresh = 0;
    newer.hidden = true;
    tiles.forEach(dropTile);
    grid.replaceChildren();
    const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
    history.replaceState(null, "", `#/${query.size ? `?${query}` : ""}`);
    loadPage();
  }

  async function loadPage() {
    if (loading || done) return;
    loading = true;
    const mine = generation;
    const query = new URLSearchParams({ limit: PAGE_SIZE, sort: "name", fields: FIELDS });
    for (const [k, v] of Object.entries(filters)) if (v) query.set(k, v);
    if (cursor) query.set("cursor", cursor);
    let page;
    try {
      page = await getJSON(`/api/v1/streams?${query}`);
    } catch (err) {
      if (mine === generation) { message.textContent = err.message; loading = false; }
      return;
    }
    if (mine !== generation) return; // the filters changed meanwhile
    const first = cursor === null;
    const signed = await signedUrls(page.items.map((i) => i.id));
    if (mine !== generation) return;
    grid.append(...page.items.map((item) => addTile(item, signed.get(item.id))));
    cursor = page.next_cursor;
    done = cursor === null;
    loading = false;
    total.textContent = `${page.total_is_exact ? "" : "≥ "}${page.total} streams`;
    message.textContent = first && page.items.length === 0 ? "No streams match." : "";
    if (first) ctx.firstTiles();
    // Observing again re-reports the sentinel: a tall screen may need the next page already.
    pager.unobserve(sentinel);
    if (!done) pager.observe(sentinel);
  }

  // stream id -> its signed URLs (empty when the call failed: the tiles then say so)
  async function signedUrls(ids) {
    if (ids.length === 0) return new Map();
    const body = await getJSON("/api/v1/image-urls", {
      method: "POST", json: { stream_ids: ids, ttl_seconds: URL_TTL },
    }).catch(() => ({ items: [] }));
    return new Map(body.items.map((u) => [u.stream_id, u]));
  }

  function addTile(item, signed) {
    const img = h("img", { alt: "", decoding: "async", hidden: true });
    const note = h("span", { class: "placeholder" }, "…");
    const busy = h("span", { class: "busy", hidden: true }, "capturing");
    const tile = {
      id: item.id, img, note, busy, signed, hot: Boolean(item.hot), loads: 0, at: null,
      stale: true, visible: false,
      name: h("span", { class: "name" }), status: h("span"), age: h("span", { class: "age" }),
      tags: h("span", { class: "tags" }),
    };
    tile.el = h("a", { class: "tile", href: `#/streams/${item.id}`, "data-id": item.id },
      h("div", { class: "frame" }, img, note, busy),
      h("div", { class: "meta" }, tile.name, tile.status),
      h("div", { class: "sub" }, tile.age, tile.tags));
    img.addEventListener("load", () => {
      img.hidden = false; note.hidden = true;
      tile.el.dataset.image = "loaded";
    });
    img.addEventListener("error", () => {
      if (tile.el.dataset.image === "loaded") return; // keep the last frame shown
      img.hidden = true; note.hidden = false; note.textContent = "no frame yet";
    });
    update(tile, item);
    tiles.set(item.id, tile);
    images.observe(tile.el);
    return tile.el;
  }

  function update(tile, data) {
    if (data.name !== undefined) tile.name.textContent = data.name;
    if (data.status !== undefined) tile.status.replaceChildren(statusBadge(data.status));
    if (data.tags !== undefined) tile.tags.textContent = data.tags.map((t) => `#${t}`).join(" ");
    if (typeof data.hot === "boolean") tile.hot = data.hot; // null: the event does not say
    tile.el.title = data.last_error || "";
  }

  async function loadImage(tile) {
    tile.stale = false;
    if (!tile.signed || tile.signed.expires_at * 1000 - Date.now() < 60_000) {
      tile.signed = (await signedUrls([tile.id])).get(tile.id);
      if (!tile.signed) { tile.stale = true; return; }
    }
    if (tiles.get(tile.id) !== tile) return;
    // Same origin as the page (img-src 'self'); the width the tile shows, in device pixels.
    const url = new URL(tile.signed.latest_jpg, location.href);
    const width = Math.ceil((tile.el.clientWidth || 320) * (devicePixelRatio || 1) / WIDTH_STEP) * WIDTH_STEP;
    url.searchParams.set("width", Math.min(Math.max(width, 16), 1920));
    tile.loads += 1;
    if (tile.loads > 1) url.searchParams.set("n", tile.loads); // a new frame: a new fetch
    tile.img.src = url.pathname + url.search;
  }

  function showAge(tile) { if (tile.at) tile.age.textContent = ago(tile.at); }

  function dropTile(tile) {
    images.unobserve(tile.el);
    tiles.delete(tile.id);
  }

  function onEvent({ detail: frame }) {
    const [entity, verb] = frame.type.split(".");
    const streamId = entity === "stream" ? frame.entity_id : frame.data.stream_id;
    const tile = tiles.get(streamId);
    if (frame.type === "stream.created" && !tile) {
      fresh += 1;
      newer.textContent = `${fresh} new — show`;
      newer.hidden = false;
    } else if (!tile) {
      return;
    } else if (frame.type === "stream.deleted") {
      tile.el.remove();
      dropTile(tile);
    } else if (entity === "stream") {
      update(tile, frame.data);
    } else if (entity === "snapshot_job") {
      tile.busy.hidden = !["queued", "started"].includes(verb);
    } else if (frame.type === "snapshot.created") {
      tile.stale = true;
      tile.at = new Date(frame.occurred_at || Date.now());
      if (tile.visible) loadImage(tile);
    }
  }

  return () => {
    generation += 1;
    images.disconnect(); pager.disconnect(); clearInterval(ticker); clearInterval(hotTicker);
    ctx.bus.removeEventListener("event", onEvent);
    ctx.bus.removeEventListener("resync", reset);
    tiles.forEach(dropTile);
  };
}
