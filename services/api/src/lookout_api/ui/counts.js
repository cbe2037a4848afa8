// The counts bar: the tenant's live counts (refetched when the tenant room says
// counts.changed) and, from the dashboard summary, the failing streams and failed jobs.

import { getJSON } from "./api.js";
import { h, throttle } from "./dom.js";

const GROUPS = [
  ["Streams", "streams_total", "streams_status", ["online", "pending", "error", "disabled"], "status"],
  ["Kinds", null, "streams_kind", ["rtsp", "rtmp", "hls", "http", "file"], "kind"],
  ["Snapshots", "snapshots_total", null, [], null],
  ["Jobs", null, "jobs_status", ["queued", "running", "succeeded", "failed"], null],
];

export function mountCounts(el, ctx) {
  const bar = h("div", { class: "chips", id: "count-chips" });
  const attention = h("div", { class: "attention", id: "attention" });
  el.replaceChildren(bar, attention);

  const refreshCounts = throttle(async () => {
    const c = await getJSON("/api/v1/counts").catch(() => null);
    if (c) renderCounts(c.counts);
  }, 300);
  // The summary asks RabbitMQ for queue depths too: fetch it less often.
  const refreshSummary = throttle(async () => {
    const d = await getJSON("/api/v1/dashboard/summary").catch(() => null);
    if (d) renderAttention(d);
  }, 2000);
  const onEvent = ({ detail: f }) => {
    if (f.type === "counts.changed") { refreshCounts(); refreshSummary(); }
  };
  const refresh = () => { refreshCounts(); refreshSummary(); };
  ctx.bus.addEventListener("event", onEvent);
  ctx.bus.addEventListener("resync", refresh);
  refresh();

  function renderCounts(counts) {
    bar.replaceChildren(...GROUPS.map(([label, totalKey, prefix, values, filter]) => {
      const chips = values.filter((v) => counts[`${prefix}:${v}`]).map((v) => {
        const n = counts[`${prefix}:${v}`];
        const text = [h("span", { class: `dot s-${v} j-${v}` }), `${v} ${n}`];
        return filter
          ? h("a", { class: "chip", href: `#/?${filter}=${v}`, "data-count": `${prefix}:${v}` }, text)
          : h("span", { class: "chip", "data-count": `${prefix}:${v}` }, text);
      });
      const total = totalKey ? h("b", { "data-count": totalKey }, String(counts[totalKey] || 0)) : "";
      return h("span", { class: "group" }, h("span", { class: "label" }, label), total, chips);
    }));
  }

  function renderAttention(d) {
    const streams = d.error_streams.map((s) => h("li", {},
      h("a", { href: `#/streams/${s.id}` }, s.name), " ", h("span", { class: "muted" }, s.last_error || "")));
    const jobs = d.failed_jobs.map((j) => h("li", {},
      j.stream_id ? h("a", { href: `#/streams/${j.stream_id}` }, "job") : "job",
      " ", h("span", { class: "muted" }, j.error || "failed")));
    attention.hidden = streams.length + jobs.length === 0;
    attention.replaceChildren(
      streams.length ? h("div", {}, h("span", { class: "label" }, "Failing streams"), h("ul", {}, streams)) : "",
      jobs.length ? h("div", {}, h("span", { class: "label" }, "Failed jobs"), h("ul", {}, jobs)) : "");
  }

  return () => {
    ctx.bus.removeEventListener("event", onEvent);
    ctx.bus.removeEventListener("resync", refresh);
  };
}
