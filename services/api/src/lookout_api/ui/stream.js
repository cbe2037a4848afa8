// One stream: a bigger frame, "take snapshot" with the job's progress from its jobs: room,
// the snapshot history a page at a time, and edits guarded by the stream's ETag (If-Match).

import { getJSON, image, request } from "./api.js";
import { ago, clock, h, statusBadge } from "./dom.js";

const HISTORY_PAGE = 12;
const EDITABLE = ["name", "tags", "enabled", "hot", "hot_mode"];

export function mountStream(view, ctx, id) {
  const canWrite = ctx.me.role !== "viewer";
  const urls = new Set(); // object URLs to revoke on the way out
  let stream = null, etag = null, base = null, dirty = false, cursor = null, frameAt = null;
  let jobRoom = null;

  const title = h("h2", { class: "name" });
  const info = h("p", { class: "info" });
  const frame = h("img", { alt: "latest frame", class: "big", hidden: true });
  const frameNote = h("p", { class: "muted" }, "loading…");
  const age = h("span", { class: "age" });
  const job = h("p", { class: "job", id: "job", "aria-live": "polite" });
  const history = h("div", { class: "history", id: "history" });
  const older = h("button", { type: "button", class: "quiet", hidden: true, onclick: () => loadHistory(false) }, "Older");
  const form = canWrite ? editForm() : null;
  const conflict = h("div", { class: "conflict", id: "conflict", hidden: true });

  view.replaceChildren(
    h("p", {}, h("a", { href: "#/" }, "← Fleet")),
    h("div", { class: "stream-head" }, title, info),
    h("div", { class: "stream-body" },
      h("div", { class: "stage" }, frame, frameNote,
        h("div", { class: "actions" }, age,
          canWrite && h("button", { type: "button", id: "take", onclick: takeSnapshot }, "Take snapshot")),
        job),
      form && h("div", { class: "side" }, form, conflict)),
    h("h3", {}, "History"), history, older);

  const thumbs = new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) { thumbs.unobserve(e.target); loadThumb(e.target); }
  }, { rootMargin: "200px" });
  const ticker = setInterval(() => { if (frameAt) age.textContent = ago(frameAt); }, 5000);
  ctx.bus.addEventListener("event", onEvent);
  ctx.bus.addEventListener("resync", refetch);
  refetch();

  function refetch() { loadStream(); loadFrame(); loadHistory(true); }

  async function loadStream() {
    try {
      const r = await request(`/api/v1/streams/${id}`);
      const data = await r.json();
      if (dirty) return; // keep the operator's edit and its ETag: a save then says 412
      stream = data; etag = r.headers.get("ETag"); base = data;
      render();
    } catch (err) {
      title.textContent = err.status === 404 ? "Stream not found" : err.message;
    }
  }

  function render() {
    title.replaceChildren(stream.name, " ", statusBadge(stream.status));
    const size = stream.width ? `${stream.width}×${stream.height} ${stream.codec || ""}` : "";
    info.replaceChildren(
      [stream.kind, size, stream.enabled ? "" : "disabled", stream.hot ? `hot (${stream.hot_mode})` : "", stream.tags.map((t) => `#${t}`).join(" ")]
        .filter(Boolean).join(" · "),
      stream.url ? h("code", { class: "url" }, stream.url) : "",
      stream.last_error ? h("span", { class: "error" }, stream.last_error) : "");
    if (form) fill(stream);
  }

  async function loadFrame(snapshotId) {
    const path = snapshotId ? `/api/v1/snapshots/${snapshotId}/image` : `/api/v1/streams/${id}/snapshots/latest/image`;
    const found = await image(path).catch(() => null);
    if (!found) { frameNote.textContent = "No snapshot yet."; return; }
    if (frame.src.startsWith("blob:")) { URL.revokeObjectURL(frame.src); urls.delete(frame.src); }
    urls.add(found.url);
    frame.src = found.url; frame.hidden = false; frameNote.textContent = "";
    frameAt = found.at;
    age.textContent = frameAt ? ago(frameAt) : "";
  }

  async function loadHistory(first) {
    const query = new URLSearchParams({ limit: HISTORY_PAGE });
    if (!first && cursor) query.set("cursor", cursor);
    const page = await getJSON(`/api/v1/streams/${id}/snapshots?${query}`).catch(() => null);
    if (!page) return;
    if (first) history.replaceChildren();
    for (const s of page.items) {
      const img = h("img", { alt: "", "data-id": s.id });
      const at = new Date(s.created_at);
      const item = h("button", { type: "button", class: "thumb", title: at.toLocaleString(), onclick: () => loadFrame(s.id) },
        img, h("span", {}, clock(at)));
      history.append(item);
      thumbs.observe(img);
    }
    cursor = page.next_cursor;
    older.hidden = cursor === null;
  }

  async function loadThumb(img) {
    const found = await image(`/api/v1/snapshots/${img.dataset.id}/image`).catch(() => null);
    if (found) { urls.add(found.url); img.src = found.url; }
  }

  async function takeSnapshot(ev) {
    const button = ev.currentTarget;
    button.disabled = true;
    showJob("requesting", "");
    try {
      const r = await request(`/api/v1/streams/${id}/snapshots`, { method: "POST" });
      const body = await r.json();
      if (r.status === 200) { showJob("succeeded", "a fresh snapshot was there"); button.disabled = false; return; }
      watchJob(body.job_id, button);
    } catch (err) {
      showJob("failed", err.message);
      button.disabled = false;
    }
  }

  // Progress comes from the job's room; since: 0 replays what happened before we joined.
  function watchJob(jobId, button) {
    jobRoom = `jobs:${jobId}`;
    const room = jobRoom;
    const step = (status, error) => {
      showJob(status, error || "");
      if (status !== "succeeded" && status !== "failed") return;
      ctx.live.leave(room);
      button.disabled = false;
      if (status === "succeeded") { loadFrame(); loadHistory(true); }
    };
    const fetchJob = async () => {
      const j = await getJSON(`/api/v1/jobs/${jobId}`).catch(() => null);
      if (j) step(j.status, j.error);
    };
    ctx.live.join(room, { since: 0, onEvent: (f) => step(f.data.status, f.data.error), onResync: fetchJob, onRefused: fetchJob });
  }

  function showJob(status, detail) {
    job.dataset.status = status;
    job.replaceChildren("Snapshot job ", h("span", { class: `badge j-${status}` }, status), " ", detail);
  }

  function editForm() {
    const f = h("form", { class: "card edit", id: "edit" },
      h("h3", {}, "Edit"),
      h("label", {}, "Name ", h("input", { name: "name", required: true, maxlength: 200 })),
      h("label", {}, "Tags ", h("input", { name: "tags", placeholder: "comma-separated" })),
      h("label", { class: "check" }, h("input", { name: "enabled", type: "checkbox" }), " enabled"),
      h("label", { class: "check", title: "a worker holds the stream open and keeps its latest frame (counted in a quota)" },
        h("input", { name: "hot", type: "checkbox" }), " hot"),
      h("label", {}, "Decode ", h("select", { name: "hot_mode" },
        h("option", { value: "keyframes" }, "keyframes only"), h("option", { value: "all" }, "every frame"))),
      h("button", { type: "submit" }, "Save"),
      h("p", { class: "muted", id: "edit-status" }));
    f.addEventListener("input", () => { dirty = true; });
    f.addEventListener("submit", (ev) => { ev.preventDefault(); save(changes()); });
    return f;
  }

  function fill(s) {
    form.elements.name.value = s.name;
    form.elements.tags.value = s.tags.join(", ");
    form.elements.enabled.checked = s.enabled;
    form.elements.hot.checked = Boolean(s.hot);
    form.elements.hot_mode.value = s.hot_mode || "keyframes";
  }

  function changes() {
    const tags = form.elements.tags.value.split(",").map((t) => t.trim().toLowerCase()).filter(Boolean);
    const mine = {
      name: form.elements.name.value.trim(), tags, enabled: form.elements.enabled.checked,
      hot: form.elements.hot.checked, hot_mode: form.elements.hot_mode.value,
    };
    return Object.fromEntries(EDITABLE.filter((k) => show(mine[k]) !== show(base[k])).map((k) => [k, mine[k]]));
  }

  async function save(mine) {
    const status = form.querySelector("#edit-status");
    if (Object.keys(mine).length === 0) { status.textContent = "Nothing to save."; dirty = false; return; }
    try {
      const r = await request(`/api/v1/streams/${id}`, { method: "PATCH", json: mine, headers: { "If-Match": etag } });
      stream = await r.json(); etag = r.headers.get("ETag"); base = stream; dirty = false;
      conflict.hidden = true;
      status.textContent = "Saved.";
      render();
    } catch (err) {
      if (err.status === 412) return showConflict(mine);
      const fields = (err.problem.errors || []).map((e) => `${(e.loc || []).join(".")}: ${e.msg}`);
      status.textContent = [err.message, ...fields].join(" ");
    }
  }

  // Someone saved first: show what they changed, then let the operator apply theirs on top.
  async function showConflict(mine) {
    const r = await request(`/api/v1/streams/${id}`);
    const theirs = await r.json();
    const changed = ["name", "tags", "enabled", "hot", "hot_mode", "url", "status"].filter((k) => show(theirs[k]) !== show(base[k]));
    conflict.replaceChildren(
      h("strong", {}, "Someone else changed this stream while you were editing."),
      h("ul", {}, changed.map((k) => h("li", {}, `${k}: ${show(base[k])} → ${show(theirs[k])}`))),
      h("p", {}, "Your changes: ", Object.entries(mine).map(([k, v]) => `${k} = ${show(v)}`).join(", ")),
      h("button", { type: "button", id: "retry", onclick: () => { adopt(theirs, r); save(mine); } }, "Apply mine on top"),
      " ",
      h("button", { type: "button", class: "quiet", onclick: () => { dirty = false; adopt(theirs, r); fill(theirs); conflict.hidden = true; } }, "Keep theirs"));
    conflict.hidden = false;
  }

  function adopt(theirs, r) { stream = theirs; base = theirs; etag = r.headers.get("ETag"); render(); }

  function onEvent({ detail: f }) {
    if (f.type === "stream.deleted" && f.entity_id === id) title.textContent = "This stream was deleted.";
    else if (f.type === "stream.updated" && f.entity_id === id) loadStream();
    else if (f.type === "snapshot.created" && f.data.stream_id === id) { loadFrame(); loadHistory(true); }
  }

  return () => {
    thumbs.disconnect(); clearInterval(ticker);
    ctx.bus.removeEventListener("event", onEvent);
    ctx.bus.removeEventListener("resync", refetch);
    if (jobRoom) ctx.live.leave(jobRoom);
    urls.forEach((u) => URL.revokeObjectURL(u));
  };
}

function show(value) {
  return Array.isArray(value) ? value.join(", ") : String(value);
}
