// One patient: trend charts over a chosen window, and the notifications about them.
import { apiUrl, request } from "./api.js";
import { throttle } from "./dom.js";
import { CHARTS, TrendChart } from "./charts.js";
import { PatientAlarms } from "./limits.js";
import { notificationItem, markRead } from "./notifications.js";
import { VITALS, vitalValue } from "./vitals.js";

// Live samples arrive every few seconds; re-reading the history this often is plenty.
const REFRESH_MS = 5000;

export class PatientView {
  constructor({ section, name, summary, charts, notifications, windows, download, alarms }, onChanged) {
    this.section = section;
    this.alarms = new PatientAlarms(alarms);
    this.name = name;
    this.summary = summary;
    this.chartsNode = charts;
    this.notifications = notifications;
    this.windowButtons = windows;
    this.download = download;
    this.onChanged = onChanged;
    this.uuid = null;
    this.window = "1h";
    this.charts = [];
    this.refreshSoon = throttle(() => this.loadHistory(), REFRESH_MS);
    for (const button of windows) {
      button.addEventListener("click", () => this.setWindow(button.dataset.window));
    }
    window.addEventListener("resize", throttle(() => this.charts.forEach((c) => c.resize()), 250));
  }

  async open(uuid) {
    this.uuid = uuid;
    this.section.hidden = false;
    this.offerDownload(null);
    if (!this.charts.length) {
      this.charts = CHARTS.map((spec) => new TrendChart(spec, this.chartsNode));
    }
    const { body } = await request(`/patients/${uuid}`);
    this.name.textContent = body.name;
    this.showLatest(body.latest, body.sample_count);
    await Promise.all([this.loadHistory(), this.loadNotifications(), this.alarms.open(uuid)]);
  }

  close() {
    this.uuid = null;
    this.section.hidden = true;
  }

  setWindow(name) {
    this.window = name;
    for (const button of this.windowButtons) {
      button.setAttribute("aria-pressed", String(button.dataset.window === name));
    }
    this.loadHistory();
  }

  async loadHistory() {
    if (!this.uuid) return;
    const uuid = this.uuid;
    const { body } = await request(`/patient/${uuid}/history`, { params: { window: this.window } });
    if (uuid !== this.uuid || body.window !== this.window) return; // the user moved on
    this.charts.forEach((chart) => chart.show(body));
    this.offerDownload(body);
  }

  // The samples of exactly the window the charts show, as the API's CSV; a plain link, so
  // the browser downloads it with the session cookie, as it sends it with every API call.
  offerDownload(history) {
    this.download.hidden = !history;
    if (!history) {
      this.download.removeAttribute("href");
      return;
    }
    this.download.href = apiUrl(`/patient/${history.patient_uuid}/metrics.csv`,
      { from: history.from, to: history.to });
  }

  async loadAlarms() {
    if (this.uuid) await this.alarms.loadHistory();
  }

  async loadNotifications() {
    if (!this.uuid) return;
    const { body } = await request("/notifications", { params: { patient_uuid: this.uuid, page_size: 20 } });
    this.notifications.replaceChildren(...body.map((n) => notificationItem(n, async (id) => {
      await markRead(id);
      await this.onChanged();
    })));
  }

  showLatest(latest, count) {
    if (!latest) {
      this.summary.textContent = "No samples yet.";
      return;
    }
    const values = VITALS.map((vital) => `${vital.label} ${vitalValue(latest, vital).text}`);
    const total = count === undefined ? "" : ` · ${count} samples`;
    this.summary.textContent =
      `NEWS2 ${latest.news2_score ?? "–"} (${latest.news2_band ?? "unscored"}) · ${values.join(" · ")}${total}`;
  }

  applySamples(samples) {
    const mine = samples.filter((sample) => sample.patient_uuid === this.uuid);
    if (!mine.length) return;
    this.showLatest(mine[mine.length - 1]);
    this.refreshSoon();
  }
}
