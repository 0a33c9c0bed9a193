// The sign-in the page runs under: the CSRF token its changes carry, and the way back to the
// login page once the session has ended (signed out elsewhere, idle, account disabled).
import { settings } from "./settings.js";

export const csrfToken = document.querySelector('meta[name="csrf-token"]')?.content || "";

let leaving = false;

// Signing out is leaving too: a request still in flight then answers 401, and must not
// turn the sign-out's own way to the login page into a "sign in again, then come back".
document.getElementById("logout-form")?.addEventListener("submit", () => { leaving = true; });

export function signInAgain() {
  if (leaving) return;
  leaving = true;
  // Back to where the user was once signed in again; the server accepts only local paths.
  const next = `${location.pathname}${location.hash}`;
  location.assign(`${settings.login}?next=${encodeURIComponent(next)}`);
}
