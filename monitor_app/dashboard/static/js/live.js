// The live stream: one WebSocket, reopened with exponential back-off (and jitter, so a ward
// of screens does not reconnect in lock-step after a restart). The indicator shows its state.
// The server closes it with 1008 "session ended" once the sign-in no longer holds; a
// handshake it refuses (no hello) may mean the same, which `onRefused` finds out.
import { settings } from "./settings.js";

const FIRST_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;
const POLICY_VIOLATION = 1008;
const SESSION_ENDED = "session ended";

export class LiveStream {
  constructor(indicator, { onEvent, onConnected, onDisconnected, onSignedOut, onRefused }) {
    this.indicator = indicator;
    this.onEvent = onEvent;
    this.onConnected = onConnected;
    this.onDisconnected = onDisconnected;
    this.onSignedOut = onSignedOut;
    this.onRefused = onRefused;
    this.failures = 0;
    this.socket = null;
    this.retryTimer = null;
  }

  start() {
    this.setState("connecting", "Connecting…");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${settings.websocket}`);
    this.socket = socket;
    this.greeted = false;
    socket.addEventListener("message", (message) => this.receive(message.data));
    socket.addEventListener("close", (event) => this.closed(event));
    // An error is always followed by close, which does the reconnecting.
  }

  closed(event) {
    if (event.code === POLICY_VIOLATION && event.reason === SESSION_ENDED) {
      this.setState("disconnected", "Signed out");
      this.onSignedOut();
      return;
    }
    if (!this.greeted) this.onRefused();
    this.scheduleReconnect();
  }

  receive(text) {
    let event;
    try {
      event = JSON.parse(text);
    } catch {
      return;
    }
    if (event.type === "hello") {
      this.failures = 0;
      this.greeted = true;
      // Events missed while disconnected are not replayed: re-read the API instead.
      this.showLive(event.live);
      this.onConnected();
      return;
    }
    if (event.type === "live") {
      this.showLive(event.live);
      // Whatever happened while the server's event feed was down is in the API.
      if (event.live) this.onConnected();
      return;
    }
    // An event is proof enough that they flow.
    if (this.indicator.dataset.state !== "live") this.showLive(true);
    this.onEvent(event);
  }

  scheduleReconnect() {
    if (this.retryTimer) return;
    this.failures += 1;
    const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (this.failures - 1));
    const delay = ceiling / 2 + Math.random() * ceiling / 2;
    this.setState("disconnected", `Disconnected · retrying in ${Math.ceil(delay / 1000)} s`);
    this.onDisconnected();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.start();
    }, delay);
  }

  showLive(live) {
    this.setState(live ? "live" : "connecting", live ? "Live" : "Connected · waiting for events…");
  }

  setState(state, label) {
    this.indicator.dataset.state = state;
    this.indicator.querySelector(".label").textContent = label;
  }
}
