// The operator page: login, the live connection, and the views behind the hash routes
// #/ (fleet grid), #/streams/<id> (one stream) and #/ops (operations, admins).

import * as api from "./api.js";
import { mountCounts } from "./counts.js";
import { clock } from "./dom.js";
import { mountGrid } from "./grid.js";
import { Live } from "./live.js";
import { mountOps } from "./ops.js";
import { mountStream } from "./stream.js";

const $ = (selector) => document.querySelector(selector);
const config = fetch("/ui/config.json").then((r) => r.json());
let session = null;

$("#login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  performance.clearMarks();
  performance.clearMeasures();
  performance.mark("lookout:login");
  const form = ev.currentTarget;
  $("#login-error").textContent = "";
  try {
    const token = await api.login(form.elements.username.value, form.elements.password.value);
    performance.mark("lookout:token");
    form.elements.password.value = "";
    await start(token);
  } catch (err) {
    $("#login-error").textContent = err.status === 401 ? "Wrong e-mail or password." : err.message;
  }
});
$("#logout").addEventListener("click", () => end(""));
api.onSessionEnd(end);
window.addEventListener("hashchange", route);
showLogin("");

async function start(token) {
  api.setToken(token);
  const me = await api.getJSON("/api/v1/users/me");
  const bus = new EventTarget();
  const live = new Live((await config).notifier_ws_url, token);
  live.addEventListener("state", (ev) => {
    showConnection(ev.detail);
    // 1008: the token expired (or was refused); a REST call then ends the session on its 401.
    if (ev.detail.code === 1008) api.getJSON("/api/v1/users/me").catch(() => {});
  });
  // The tenant room carries every stream, job and snapshot event of the tenant and its
  // counts.changed: one subscription feeds the grid, the stream view and the counts.
  if (me.tenant_id) {
    live.join(`tenant:${me.tenant_id}`, {
      onEvent: (frame) => bus.dispatchEvent(new CustomEvent("event", { detail: frame })),
      onResync: () => bus.dispatchEvent(new Event("resync")),
    });
  }
  live.start();
  session = { me, bus, live, view: null, counts: null, firstTiles };
  document.body.dataset.role = me.role;
  $("#who").textContent = `${me.email} · ${me.role}`;
  $("#nav-ops").hidden = !isAdmin(me);
  $("#login").hidden = true;
  $("#shell").hidden = false;
  session.counts = mountCounts($("#counts"), session);
  route();
}

function end(message) {
  if (!session) return;
  session.live.stop();
  session.view?.();
  session.counts?.();
  session = null;
  api.setToken(null);
  $("#view").replaceChildren();
  $("#counts").replaceChildren();
  history.replaceState(null, "", location.pathname);
  showLogin(message);
}

function showLogin(message) {
  delete document.body.dataset.role;
  $("#shell").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message;
  $("#login-form").elements.username.focus();
}

function route() {
  if (!session) return;
  session.view?.();
  const [path, query] = location.hash.slice(1).split("?");
  const view = $("#view");
  const stream = /^\/streams\/([0-9a-f-]{36})$/.exec(path || "");
  if (stream) session.view = mountStream(view, session, stream[1]);
  else if (path === "/ops" && isAdmin(session.me)) session.view = mountOps(view, session);
  else session.view = mountGrid(view, session, new URLSearchParams(query || ""));
}

// Measures when the first tiles are on screen: from the login (the password check on the
// server included) and from the token's arrival (the page's own work).
function firstTiles() {
  if (performance.getEntriesByName("lookout:first-tiles").length) return;
  requestAnimationFrame(() => setTimeout(() => {
    performance.mark("lookout:tiles");
    performance.measure("lookout:first-tiles", "lookout:login", "lookout:tiles");
    performance.measure("lookout:tiles-after-token", "lookout:token", "lookout:tiles");
  }));
}

function isAdmin(me) { return me.role === "admin" || me.role === "superuser"; }

let drops = 0;
function showConnection({ state, since, recoveredFrom, resynced }) {
  const el = $("#conn");
  el.dataset.state = state;
  if (state === "down") {
    el.textContent = `offline since ${clock(since)} · reconnecting`;
  } else if (state === "connecting") {
    el.textContent = since ? `offline since ${clock(since)} · reconnecting` : "connecting";
  } else if (resynced) {
    el.title = `history too short after the drop: ${resynced} refetched`;
  } else if (recoveredFrom) {
    drops += 1;
    el.dataset.recoveries = String(drops);
    el.textContent = `live · recovered ${clock(new Date())}`;
    el.title = `dropped at ${clock(recoveredFrom)}, recovered at ${clock(new Date())}; missed events replayed`;
  } else {
    el.textContent = "live";
  }
}
