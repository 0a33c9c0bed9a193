// The monitor API over fetch, signed in by the session cookie (sent with same-origin
// requests); changes carry the CSRF token, and a 401 sends the page to the login form.
// The server's clock, read from each answer's Date header, decides when a patient is
// stale, so a ward PC with a wrong clock still shows it right.
import { csrfToken, signInAgain } from "./session.js";
import { settings } from "./settings.js";

const SAFE_METHODS = new Set(["GET", "HEAD"]);

let clockOffsetMs = 0;

export function serverNow() {
  return Date.now() + clockOffsetMs;
}

// The API's URL of `path` with the given query (empty values left out).
export function apiUrl(path, params = {}) {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") query.set(key, value);
  }
  const text = query.toString();
  return `${settings.api}${path}${text ? `?${text}` : ""}`;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

export async function request(path, { params, method = "GET", json } = {}) {
  const headers = { Accept: "application/json" };
  if (!SAFE_METHODS.has(method)) headers["X-CSRFToken"] = csrfToken;
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(apiUrl(path, params), {
    method, headers, cache: "no-store", credentials: "same-origin",
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) clockOffsetMs = date - Date.now();
  if (response.status === 401) signInAgain();
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  const pagination = JSON.parse(response.headers.get("X-Pagination") || "null");
  return { body, pagination };
}
