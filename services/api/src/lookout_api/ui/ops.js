// Operations (admins): outbox backlog, queue depths and dead letters, dependency health,
// quota use and the count drift check's last result, all from the dashboard summary;
// refreshed when counts change or on demand.

import { getJSON } from "./api.js";
import { h, throttle } from "./dom.js";

export function mountOps(view, ctx) {
  const body = h("div", { class: "ops", id: "ops" }, h("p", { class: "muted" }, "loading…"));
  const stamp = h("span", { class: "muted" });
  view.replaceChildren(
    h("div", { class: "toolbar" }, h("h2", {}, "Operations"), stamp,
      h("button", { type: "button", class: "quiet", onclick: () => refresh() }, "Refresh")),
    body,
    h("p", { class: "muted" },
      "The worker, aggregator and notifier each answer /readyz and /metrics on their own port."));
  const refresh = throttle(load, 1000);
  const onEvent = ({ detail: f }) => { if (f.type === "counts.changed") refresh(); };
  ctx.bus.addEventListener("event", onEvent);
  load();

  async function load() {
    let d;
    try {
      d = await getJSON("/api/v1/dashboard/summary");
    } catch (err) {
      body.replaceChildren(h("p", { class: "error" }, err.message));
      return;
    }
    stamp.textContent = `as of ${new Date().toLocaleTimeString([], { hour12: false })}`;
    const queues = d.queues.rabbitmq;
    body.replaceChildren(
      card("Health", Object.entries(d.health).map(([name, ok]) =>
        row(name, ok ? "ok" : "down", ok ? "good" : "bad"))),
      card("Outbox", [
        row("unpublished", d.queues.outbox.unpublished, d.queues.outbox.unpublished ? "warn" : ""),
        row("oldest", d.queues.outbox.oldest_age_seconds === null ? "—" : `${Math.round(d.queues.outbox.oldest_age_seconds)} s`),
      ]),
      card("Queues (ready)", queues === null ? [row("RabbitMQ", "not connected", "bad")] :
        Object.entries(queues).filter(([n]) => !n.endsWith(".dead")).map(([n, v]) => row(n, v))),
      card("Dead letters", queues === null ? [row("RabbitMQ", "not connected", "bad")] :
        Object.entries(queues).filter(([n]) => n.endsWith(".dead")).map(([n, v]) => row(n, v, v ? "bad" : ""))),
      d.quotas ? card("Quotas", [
        row("streams", `${d.quotas.max_streams.used ?? "?"} / ${d.quotas.max_streams.limit}`),
        row("snapshot requests / min",
          `${d.quotas.snapshot_requests_per_minute.used ?? "?"} / ${d.quotas.snapshot_requests_per_minute.limit}`),
      ]) : "",
      card("Counts", [
        row("source", d.counts.source, d.counts.source === "sql" ? "warn" : ""),
        ...driftRows(d.drift),
      ]));
  }

  return () => ctx.bus.removeEventListener("event", onEvent);
}

function driftRows(drift) {
  if (!drift) return [row("drift check", "not run yet")];
  const when = new Date(drift.checked_at).toLocaleTimeString([], { hour12: false });
  const verdict = drift.fields ? `${drift.fields} fields in ${drift.scopes} scopes differ` : "match";
  return [row("drift check", `${verdict} (${drift.mode}, ${when})`, drift.fields ? "bad" : "good")];
}

function card(title, rows) {
  return h("section", { class: "card" }, h("h3", {}, title), h("table", {}, h("tbody", {}, rows)));
}

function row(name, value, tone = "") {
  return h("tr", {}, h("th", {}, name), h("td", { class: tone }, String(value)));
}
