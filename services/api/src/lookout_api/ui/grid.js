// The fleet grid: one tile per stream, a page at a time (the API's keyset cursors), images
// fetched only for tiles near the viewport, and live changes from the tenant room.

import { getJSON, image } from "./api.js";
import { ago, h, statusBadge } from "./dom.js";

const PAGE_SIZE = 48;
const FIELDS = "id,name,status,kind,tags,enabled,last_error";
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
    grid.append(...page.items.map(addTile));
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

  function addTile(item) {
    const img = h("img", { alt: "", decoding: "async", hidden: true });
    const note = h("span", { class: "placeholder" }, "…");
    const busy = h("span", { class: "busy", hidden: true }, "capturing");
    const tile = {
      id: item.id, img, note, busy, url: null, at: null, stale: true, visible: false,
      name: h("span", { class: "name" }), status: h("span"), age: h("span", { class: "age" }),
      tags: h("span", { class: "tags" }),
    };
    tile.el = h("a", { class: "tile", href: `#/streams/${item.id}`, "data-id": item.id },
      h("div", { class: "frame" }, img, note, busy),
      h("div", { class: "meta" }, tile.name, tile.status),
      h("div", { class: "sub" }, tile.age, tile.tags));
    update(tile, item);
    tiles.set(item.id, tile);
    images.observe(tile.el);
    return tile.el;
  }

  function update(tile, data) {
    if (data.name !== undefined) tile.name.textContent = data.name;
    if (data.status !== undefined) tile.status.replaceChildren(statusBadge(data.status));
    if (data.tags !== undefined) tile.tags.textContent = data.tags.map((t) => `#${t}`).join(" ");
    tile.el.title = data.last_error || "";
  }

  async function loadImage(tile) {
    tile.stale = false;
    let found;
    try {
      found = await image(`/api/v1/streams/${tile.id}/snapshots/latest/image`);
    } catch {
      tile.stale = true;
      return;
    }
    if (tiles.get(tile.id) !== tile) { if (found) URL.revokeObjectURL(found.url); return; }
    if (found === null) { tile.note.textContent = "no snapshot yet"; return; }
    const old = tile.url;
    tile.url = found.url; tile.at = found.at;
    tile.img.src = found.url;
    tile.img.hidden = false; tile.note.hidden = true;
    tile.el.dataset.image = "loaded";
    if (old) URL.revokeObjectURL(old);
    showAge(tile);
  }

  function showAge(tile) { if (tile.at) tile.age.textContent = ago(tile.at); }

  function dropTile(tile) {
    images.unobserve(tile.el);
    if (tile.url) URL.revokeObjectURL(tile.url);
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
      if (tile.visible) loadImage(tile);
    }
  }

  return () => {
    generation += 1;
    images.disconnect(); pager.disconnect(); clearInterval(ticker);
    ctx.bus.removeEventListener("event", onEvent);
    ctx.bus.removeEventListener("resync", reset);
    tiles.forEach(dropTile);
  };
}
