// The alarm bar: every open alarm, highest priority then newest first, shown the IEC
// 60601-1-8 way (high red, flashing fast; medium yellow, flashing slowly; low cyan, steady),
// with Acknowledge and Silence for those who may answer, and an optional sound.
import { request, serverNow } from "./api.js";
import { el, timeAgo } from "./dom.js";
import { settings } from "./settings.js";

const RANK = { high: 3, medium: 2, low: 1 };
const PAGE_SIZE = 100;
// How often each priority sounds while it rings: IEC's high burst is the more insistent.
const SOUND_EVERY_MS = { high: 3000, medium: 8000 };

export class AlarmBar {
  constructor({ bar, list, count, sound }, onChange) {
    this.bar = bar;
    this.list = list;
    this.count = count;
    this.sound = sound;
    this.onChange = onChange;
    this.alarms = [];
    this.audio = null;
    this.lastSound = 0;
    sound.addEventListener("click", () => this.toggleSound());
  }

  async load() {
    const { body } = await request("/alarms", { params: { state: "open", page_size: PAGE_SIZE } });
    this.alarms = body.sort(byUrgency);
    this.render();
    this.onChange(this.byPatient());
  }

  // The most urgent open alarm of each patient, for their tile.
  byPatient() {
    const top = new Map();
    for (const alarm of this.alarms) {
      if (!top.has(alarm.patient_uuid)) top.set(alarm.patient_uuid, alarm);
    }
    return top;
  }

  render() {
    this.list.replaceChildren(...this.alarms.map((alarm) => this.item(alarm)));
    this.bar.dataset.empty = String(this.alarms.length === 0);
    this.count.textContent = String(this.alarms.length);
    this.tick();
  }

  item(alarm) {
    const acknowledged = alarm.state === "acknowledged";
    const answer = (action, label, title) => (settings.mayAnswerAlarms
      ? el("button", {
        type: "button", class: action, title,
        onclick: (event) => {
          event.currentTarget.disabled = true;
          this.answer(alarm.id, action).catch((error) => console.error(error));
        },
      }, label)
      : null);
    return el("li", {
      class: "alarm",
      dataset: {
        id: alarm.id, priority: alarm.priority, state: alarm.state, kind: alarm.kind,
        patientUuid: alarm.patient_uuid, escalation: String(alarm.escalation_level),
      },
    },
    el("a", { class: "alarm-patient", href: `#/patient/${alarm.patient_uuid}` }, alarm.patient_name),
    el("span", { class: "alarm-condition" }, alarm.condition_text),
    el("span", { class: "alarm-value" }, describeValue(alarm)),
    el("span", { class: "alarm-priority" }, alarm.priority),
    el("time", { class: "alarm-age", datetime: alarm.started_at }, ""),
    alarm.escalation_level > 0
      ? el("span", { class: "alarm-escalation", title: "Not acknowledged in time" },
        `escalated ×${alarm.escalation_level}`)
      : null,
    acknowledged ? el("span", { class: "alarm-ack" }, "acknowledged") : null,
    el("span", { class: "alarm-silenced", hidden: true }, "silenced"),
    acknowledged ? null : answer("acknowledge", "Acknowledge", "I have seen this alarm"),
    answer("silence", "Silence 2 min", "Pause this alarm's sound for two minutes"));
  }

  async answer(id, action) {
    await request(`/alarms/${id}/${action}`, { method: "POST", json: {} });
    await this.load();
  }

  // Every second: ages, silences that ran out, and the sound.
  tick() {
    const now = serverNow();
    let ringing = null;
    for (const item of this.list.children) {
      const alarm = this.alarms.find((a) => a.id === item.dataset.id);
      if (!alarm) continue;
      item.querySelector(".alarm-age").textContent = timeAgo(now - Date.parse(alarm.started_at));
      const silenced = alarm.silenced_until != null && Date.parse(alarm.silenced_until) > now;
      item.dataset.silenced = String(silenced);
      item.querySelector(".alarm-silenced").hidden = !silenced;
      if (!silenced && alarm.state === "active" && SOUND_EVERY_MS[alarm.priority]
          && (!ringing || RANK[alarm.priority] > RANK[ringing])) ringing = alarm.priority;
    }
    this.bar.dataset.ringing = ringing || "none";
    if (ringing && this.audio && now - this.lastSound >= SOUND_EVERY_MS[ringing]) {
      this.lastSound = now;
      beep(this.audio, ringing);
    }
  }

  // Browsers start sound only after a click, so it is off until someone turns it on.
  toggleSound() {
    if (this.audio) {
      this.audio.close();
      this.audio = null;
    } else {
      this.audio = new AudioContext();
      this.lastSound = 0;
    }
    const on = this.audio !== null;
    this.sound.setAttribute("aria-pressed", String(on));
    this.sound.textContent = on ? "Sound on" : "Sound off";
  }
}

function byUrgency(a, b) {
  return (RANK[b.priority] - RANK[a.priority]) || Date.parse(b.started_at) - Date.parse(a.started_at);
}

function describeValue(alarm) {
  if (alarm.value == null) return "";
  return alarm.limit == null ? `${alarm.value}` : `${alarm.value} (limit ${alarm.limit})`;
}

// IEC 60601-1-8's melodies are pulse bursts: three rising pulses for medium, five for high.
function beep(audio, priority) {
  const pulses = priority === "high" ? 5 : 3;
  const start = audio.currentTime;
  for (let i = 0; i < pulses; i += 1) {
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = 440 + 40 * i;
    gain.gain.value = 0.15;
    tone.connect(gain).connect(audio.destination);
    tone.start(start + i * 0.2);
    tone.stop(start + i * 0.2 + 0.12);
  }
}
