// One WebSocket to the notifier for the whole page.
//
// The token travels as the subprotocols ["bearer", token] (a browser cannot set headers on a
// WebSocket, and a token in the URL would end up in logs and history). Each room remembers
// the last seq it saw and the epoch that seq belongs to: after a drop, the page reconnects
// with backoff and subscribes with `since` and `epoch`, and the notifier replays what was
// missed, or answers `recovered: false` when its history no longer covers the gap (or the
// room's numbering started a new epoch), and the room's owner then refetches over REST. A
// `reset` frame says the same about a room while connected.
// Listeners get "state" events: {state: "connecting" | "live" | "down", since, recovered}.

const MAX_BACKOFF_MS = 5000;

export class Live extends EventTarget {
  constructor(url, token) {
    super();
    this.url = url;
    this.token = token;
    this.rooms = new Map(); // room -> {seq, epoch, onEvent, onResync, onRefused}
    this.ws = null;
    this.closed = false;
    this.attempt = 0;
    this.downSince = null;
  }

  start() { this.#open(); }

  stop() {
    this.closed = true;
    this.rooms.clear();
    if (this.ws) this.ws.close(1000, "logout");
  }

  // Joins `room`; since: 0 replays the room's whole history (a job room that just began).
  join(room, { onEvent, onResync = () => {}, onRefused = () => {}, since = null }) {
    this.rooms.set(room, { seq: since, epoch: null, onEvent, onResync, onRefused });
    this.#subscribe(room);
  }

  leave(room) {
    if (this.rooms.delete(room)) this.#send({ op: "unsubscribe", room });
  }

  #open() {
    this.#emit({ state: "connecting", since: this.downSince });
    const ws = new WebSocket(this.url, ["bearer", this.token]);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      for (const room of this.rooms.keys()) this.#subscribe(room);
      const since = this.downSince;
      this.downSince = null;
      this.#emit({ state: "live", recoveredFrom: since });
    };
    ws.onmessage = (message) => this.#receive(JSON.parse(message.data));
    ws.onclose = (event) => {
      if (this.ws !== ws || this.closed) return;
      this.ws = null;
      this.downSince = this.downSince || new Date();
      this.#emit({ state: "down", since: this.downSince, code: event.code });
      // Exponential backoff with jitter, so a restarted notifier is not hit all at once.
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt++) * (0.5 + Math.random() / 2);
      setTimeout(() => this.#open(), delay);
    };
  }

  #receive(frame) {
    const entry = this.rooms.get(frame.room);
    if (frame.op === "subscribed" && entry) {
      // recovered: true — the replayed frames follow and advance seq themselves.
      if (frame.recovered === true) return;
      const gap = entry.seq !== null && frame.recovered === false;
      entry.seq = frame.seq;
      entry.epoch = frame.epoch ?? null;
      if (gap) this.#resync(frame.room, entry);
    } else if (frame.op === "reset" && entry) {
      // The room's numbering was lost and restarted: events may be missing.
      entry.seq = frame.seq;
      entry.epoch = frame.epoch;
      this.#resync(frame.room, entry);
    } else if (frame.op === "error" && frame.code === "forbidden_room" && entry) {
      this.rooms.delete(frame.room);
      entry.onRefused(frame);
    } else if (frame.type && entry) {
      const sameEpoch = !entry.epoch || !frame.epoch || frame.epoch === entry.epoch;
      if (sameEpoch && entry.seq !== null && frame.seq <= entry.seq) return; // already seen
      entry.seq = frame.seq;
      entry.epoch = frame.epoch ?? entry.epoch;
      entry.onEvent(frame);
    }
  }

  #resync(room, entry) {
    entry.onResync();
    this.#emit({ state: "live", resynced: room });
  }

  #subscribe(room) {
    const entry = this.rooms.get(room);
    const frame = { op: "subscribe", room };
    if (entry && entry.seq !== null) frame.since = entry.seq;
    if (entry && entry.epoch) frame.epoch = entry.epoch;
    this.#send(frame);
  }

  #send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  #emit(detail) { this.dispatchEvent(new CustomEvent("state", { detail })); }
}
