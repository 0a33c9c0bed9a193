// The ward overview: one tile per patient, most at risk first, stale ones marked.
import { request, serverNow } from "./api.js";
import { el, timeAgo } from "./dom.js";
import { settings } from "./settings.js";
import { VITALS, bandRank, vitalValue } from "./vitals.js";

const PAGE_SIZE = 200;

export class Ward {
  constructor(container, empty) {
    this.container = container;
    this.empty = empty;
    this.patients = new Map(); // uuid -> {uuid, name, latest}
    this.tiles = new Map(); // uuid -> tile element
    this.alarms = new Map(); // uuid -> the patient's most urgent open alarm
  }

  // The alarm bar's latest read: each tile shows its patient's most urgent open alarm.
  applyAlarms(byPatient) {
    const changed = new Set([...this.alarms.keys(), ...byPatient.keys()]);
    this.alarms = byPatient;
    for (const uuid of changed) {
      const patient = this.patients.get(uuid);
      if (patient) this.renderTile(patient);
    }
    this.render(new Set());
  }

  async load() {
    const patients = [];
    for (let page = 1; ; page += 1) {
      const { body, pagination } = await request("/patients", { params: { page, page_size: PAGE_SIZE } });
      patients.push(...body);
      if (!pagination || page >= (pagination.last_page || 1)) break;
    }
    for (const patient of patients) this.patients.set(patient.uuid, patient);
    this.render();
    this.container.dataset.loaded = "true";
  }

  // A `vitals` event: the newly stored samples, each with its patient's uuid and name.
  applySamples(samples) {
    const changed = new Set();
    for (const sample of samples) {
      const known = this.patients.get(sample.patient_uuid);
      const newer = !known?.latest || Date.parse(sample.timestamp) >= Date.parse(known.latest.timestamp);
      if (!newer) continue;
      this.patients.set(sample.patient_uuid, {
        ...known, uuid: sample.patient_uuid, name: sample.patient_name ?? known?.name, latest: sample,
      });
      changed.add(sample.patient_uuid);
    }
    this.render(changed);
  }

  latest(uuid) {
    return this.patients.get(uuid) || null;
  }

  // Redraws the tiles of `changed` patients (all by default), then restores the order.
  render(changed = null) {
    const ordered = [...this.patients.values()].sort(byRisk);
    for (const patient of ordered) {
      if (!changed || changed.has(patient.uuid)) this.renderTile(patient);
    }
    // Reorder only when the order changed, so focus and hover are not disturbed needlessly.
    const current = [...this.container.children].map((tile) => tile.dataset.patientUuid);
    const wanted = ordered.map((patient) => patient.uuid);
    if (current.join() !== wanted.join()) {
      this.container.replaceChildren(...wanted.map((uuid) => this.tiles.get(uuid)));
    }
    this.empty.hidden = ordered.length > 0;
    this.markStale();
  }

  renderTile(patient) {
    const latest = patient.latest;
    const band = latest?.news2_band || "none";
    const alarm = this.alarms.get(patient.uuid);
    const tile = el("a", {
      class: "tile", href: `#/patient/${patient.uuid}`,
      dataset: {
        patientUuid: patient.uuid, band, score: latest?.news2_score ?? "", stale: "false",
        alarm: alarm?.priority ?? "none",
      },
      "aria-label": `${patient.name}, NEWS2 ${latest?.news2_score ?? "unknown"}`,
    },
    el("div", { class: "tile-head" },
      el("div", {},
        el("div", { class: "tile-name" }, patient.name),
        el("div", { class: "tile-id", title: patient.uuid }, patient.uuid.slice(0, 8))),
      el("div", { class: "tile-news2", title: `NEWS2 ${band} risk` },
        latest?.news2_score ?? "–", el("small", {}, "NEWS2"))),
    el("div", { class: "vitals" }, VITALS.map((vital) => {
      const { text, abnormal } = vitalValue(latest, vital);
      return el("div", { class: abnormal ? "vital abnormal" : "vital", dataset: { vital: vital.key } },
        el("span", { class: "name" }, vital.label),
        el("span", { class: "value", title: vital.unit }, text));
    })),
    alarm ? el("div", { class: "tile-alarm", dataset: { priority: alarm.priority } },
      `${alarm.condition_text} · ${alarm.priority}`) : null,
    el("div", { class: "tile-foot" },
      el("span", { class: "band" }, latest ? `${band} risk` : "no sample yet"),
      el("span", { class: "age" }, "")));
    const old = this.tiles.get(patient.uuid);
    if (old) old.replaceWith(tile);
    this.tiles.set(patient.uuid, tile);
  }

  // Called every second: a patient without a sample for a few intervals may be unmonitored.
  markStale() {
    const now = serverNow();
    for (const [uuid, tile] of this.tiles) {
      const latest = this.patients.get(uuid)?.latest;
      const age = latest ? now - Date.parse(latest.timestamp) : Infinity;
      const stale = age > settings.staleAfterSeconds * 1000;
      tile.dataset.stale = String(stale);
      tile.querySelector(".age").textContent =
        latest ? (stale ? `no data · ${timeAgo(age)}` : timeAgo(age)) : "";
    }
  }
}

function byRisk(a, b) {
  const band = bandRank(b.latest?.news2_band) - bandRank(a.latest?.news2_band);
  if (band) return band;
  const score = (b.latest?.news2_score ?? -1) - (a.latest?.news2_score ?? -1);
  return score || a.name.localeCompare(b.name);
}
