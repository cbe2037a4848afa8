// The REST client. The access token lives in this module's memory only: never in a URL,
// a cookie or web storage, so a reload asks for the password again.

let token = null;
let sessionEnded = () => {};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function setToken(value) { token = value; }
export function currentToken() { return token; }
export function onSessionEnd(fn) { sessionEnded = fn; }

export async function login(email, password) {
  const body = new URLSearchParams({ username: email, password });
  const r = await fetch("/api/v1/auth/token", { method: "POST", body });
  if (!r.ok) throw new ApiError(r.status, await problemOf(r));
  return (await r.json()).access_token;
}

export async function request(path, { method = "GET", json, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const r = await fetch(path, { method, headers: h, body });
  if (r.status === 401 && token) {
    sessionEnded("Your session ended; please log in again.");
  }
  if (!r.ok) throw new ApiError(r.status, await problemOf(r));
  return r;
}

export async function getJSON(path, options) {
  const r = await request(path, options);
  return r.status === 204 ? null : r.json();
}

// An image fetched with the Authorization header, as an object URL (the caller revokes it)
// and its capture time (Last-Modified); null when there is no image (404).
export async function image(path) {
  try {
    const r = await request(path);
    const modified = r.headers.get("Last-Modified");
    return { url: URL.createObjectURL(await r.blob()), at: modified ? new Date(modified) : null };
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

async function problemOf(r) {
  try { return await r.json(); } catch { return { title: r.statusText }; }
}
