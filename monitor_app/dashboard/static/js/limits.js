// One patient's alarms: their history, and their alarm limits, which clinicians and admins
// may change (only the bounds they edit are sent, with the reason the audit trail keeps).
import { ApiError, request } from "./api.js";
import { clockTime, el } from "./dom.js";
import { settings } from "./settings.js";

const PARAMETERS = [
  ["pulse", "Pulse", "bpm"],
  ["resp_rate", "Resp", "/min"],
  ["spo2", "SpO₂", "%"],
  ["systolic", "Systolic BP", "mmHg"],
  ["temperature", "Temp", "°C"],
];
const BOUNDS = [
  ["extreme_low", "Extreme low"],
  ["low", "Low"],
  ["high", "High"],
  ["extreme_high", "Extreme high"],
];

export class PatientAlarms {
  constructor({ history, form, status }) {
    this.history = history;
    this.form = form;
    this.status = status;
    this.uuid = null;
    this.limits = null;
    this.inputs = new Map(); // "pulse.low" -> input
    this.build();
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.save().catch((error) => console.error(error));
    });
  }

  build() {
    const editable = settings.mayAnswerAlarms;
    const head = el("tr", {}, el("th", {}, ""), BOUNDS.map(([, label]) => el("th", { scope: "col" }, label)));
    const rows = PARAMETERS.map(([key, label, unit]) => el("tr", {},
      el("th", { scope: "row" }, `${label} (${unit})`),
      BOUNDS.map(([bound, boundLabel]) => {
        const input = el("input", {
          type: "number", step: "any", name: `${key}.${bound}`,
          "aria-label": `${label} ${boundLabel}`, disabled: !editable,
        });
        this.inputs.set(`${key}.${bound}`, input);
        return el("td", {}, input);
      })));
    const table = el("table", { class: "limits" }, el("thead", {}, head), el("tbody", {}, rows));
    const reason = el("input", {
      type: "text", name: "reason", maxlength: "500", required: true,
      placeholder: "Why (kept in the audit trail)", "aria-label": "Reason", disabled: !editable,
    });
    this.reason = reason;
    this.form.replaceChildren(table, editable
      ? el("div", { class: "limits-save" }, reason, el("button", { type: "submit" }, "Save limits"))
      : el("p", { class: "hint" }, "Clinicians and admins may change these."));
  }

  async open(uuid) {
    this.uuid = uuid;
    this.status.textContent = "";
    await Promise.all([this.loadLimits(), this.loadHistory()]);
  }

  async loadLimits() {
    const { body } = await request(`/patients/${this.uuid}/alarm-limits`);
    this.limits = body;
    for (const [name, input] of this.inputs) {
      const [key, bound] = name.split(".");
      const value = body[key][bound];
      input.value = value ?? "";
      input.placeholder = value == null ? "off" : "";
    }
  }

  async loadHistory() {
    const { body } = await request(`/patients/${this.uuid}/alarms`, { params: { page_size: 20 } });
    this.history.replaceChildren(...body.map((alarm) => el("li", {
      class: "alarm-event", dataset: { priority: alarm.priority, state: alarm.state },
    },
    el("span", { class: "alarm-condition" }, alarm.condition_text),
    el("span", { class: "alarm-priority" }, alarm.priority),
    el("span", {}, alarm.state),
    el("time", { datetime: alarm.started_at }, clockTime(alarm.started_at)),
    alarm.ended_at ? el("span", {}, `ended ${clockTime(alarm.ended_at)}`) : null)));
    if (!body.length) this.history.replaceChildren(el("li", { class: "empty" }, "No alarms."));
  }

  // Only what was edited: a partial body changes only what it names.
  changes() {
    const changed = {};
    for (const [name, input] of this.inputs) {
      const [key, bound] = name.split(".");
      if (input.value === "" || Number(input.value) === this.limits[key][bound]) continue;
      (changed[key] ||= {})[bound] = Number(input.value);
    }
    return changed;
  }

  async save() {
    const changed = this.changes();
    if (!Object.keys(changed).length) {
      this.status.textContent = "Nothing changed.";
      return;
    }
    try {
      await request(`/patients/${this.uuid}/alarm-limits`, {
        method: "PUT", json: { ...changed, reason: this.reason.value },
      });
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      this.status.dataset.outcome = "refused";
      this.status.textContent = `Not saved: ${error.message}${describe(error.body)}`;
      return;
    }
    this.status.dataset.outcome = "saved";
    this.status.textContent = "Saved.";
    this.reason.value = "";
    await this.loadLimits();
  }
}

function describe(body) {
  const errors = body?.errors?.json;
  if (!errors) return "";
  const parts = [];
  for (const [key, value] of Object.entries(errors)) {
    if (Array.isArray(value)) parts.push(`${key}: ${value.join(" ")}`);
    else for (const [bound, messages] of Object.entries(value)) parts.push(`${key} ${bound}: ${[].concat(messages).join(" ")}`);
  }
  return parts.length ? ` (${parts.join("; ")})` : "";
}
