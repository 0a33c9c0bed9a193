// The dashboard: routes between the ward and a patient, and feeds both from the live stream.
import { AlarmBar } from "./alarms.js";
import { request } from "./api.js";
import { LiveStream } from "./live.js";
import { NotificationsPanel } from "./notifications.js";
import { PatientView } from "./patient.js";
import { Ward } from "./ward.js";
import { throttle } from "./dom.js";
import { signInAgain } from "./session.js";

const $ = (selector) => document.querySelector(selector);

const ward = new Ward($("#ward"), $("#ward-empty"));
const alarms = new AlarmBar({
  bar: $("#alarm-bar"), list: $("#alarm-list"), count: $("#alarm-count"), sound: $("#alarm-sound"),
}, (byPatient) => ward.applyAlarms(byPatient));
const panel = new NotificationsPanel({
  list: $("#notification-list"), empty: $("#notifications-empty"), count: $("#unread-count"),
  category: $("#filter-category"), unread: $("#filter-unread"),
  newer: $("#notifications-newer"), older: $("#notifications-older"), page: $("#notifications-page"),
}, () => refreshNotifications());
const patient = new PatientView({
  section: $("#patient-view"), name: $("#patient-name"), summary: $("#patient-summary"),
  charts: $("#charts"), notifications: $("#patient-notifications"),
  windows: [...document.querySelectorAll("button.window")], download: $("#samples-csv"),
  alarms: { history: $("#patient-alarm-history"), form: $("#limits-form"), status: $("#limits-status") },
}, () => refreshNotifications());

function report(error) {
  console.error(error);
}

// A burst of events (a batch of alerts, an analysis) becomes one re-read, not one each.
const refreshNotifications = throttle(() => {
  panel.load().catch(report);
  if (patient.uuid) patient.loadNotifications().catch(report);
}, 500);

function route() {
  const match = location.hash.match(/^#\/patient\/([0-9a-f-]{36})$/i);
  $("#ward-view").hidden = Boolean(match);
  if (match) {
    patient.open(match[1]).catch(report);
  } else {
    patient.close();
  }
}

// An alarm event re-reads the open alarms: a burst of them (one batch) is one read.
const refreshAlarms = throttle(() => {
  alarms.load().catch(report);
  if (patient.uuid) patient.loadAlarms().catch(report);
}, 300);

// Read everything on each (re)connection: events missed meanwhile are not replayed.
function loadAll() {
  ward.load().then(() => refreshAlarms()).catch(report);
  refreshNotifications();
  if (patient.uuid) patient.loadHistory().catch(report);
}

const live = new LiveStream($("#live-indicator"), {
  onConnected: loadAll,
  // Without the stream the API may still answer: show what it has rather than nothing.
  onDisconnected: () => { if (ward.container.dataset.loaded !== "true") loadAll(); },
  onSignedOut: signInAgain,
  // A refused handshake looks like a network failure; the API answers 401 if it was the
  // session, and that answer sends the page to sign in.
  onRefused: () => { request("/auth/me").catch(report); },
  onEvent: (event) => {
    if (event.type === "vitals") {
      ward.applySamples(event.samples);
      patient.applySamples(event.samples);
    } else if (event.type.startsWith("notification.")) {
      refreshNotifications();
    } else if (event.type.startsWith("alarm.")) {
      refreshAlarms();
    }
  },
});

window.addEventListener("hashchange", route);
setInterval(() => { ward.markStale(); alarms.tick(); }, 1000);
route();
live.start();
