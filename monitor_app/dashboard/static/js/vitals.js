// How each vital sign is shown, and whether a value lies outside the range NEWS2 scores 0.
import { settings } from "./settings.js";

export const VITALS = [
  { key: "pulse", label: "Pulse", unit: "bpm", range: "pulse" },
  { key: "resp_rate", label: "Resp", unit: "/min", range: "resp_rate" },
  { key: "bp", label: "BP", unit: "mmHg", range: "systolic" },
  { key: "spo2", label: "SpO₂", unit: "%", range: "spo2" },
  { key: "temperature", label: "Temp", unit: "°C", range: "temperature" },
];

const BAND_RANK = Object.fromEntries(settings.bands.map((band, rank) => [band, rank]));

export function bandRank(band) {
  return band in BAND_RANK ? BAND_RANK[band] : -1;
}

export function normalRange(parameter) {
  return settings.normalRanges[parameter] || null;
}

// NEWS2 charts temperature to one decimal; the other parameters are whole numbers.
export function isAbnormal(parameter, value) {
  const range = normalRange(parameter);
  if (!range || value === null || value === undefined) return false;
  const v = parameter === "temperature" ? Math.round(value * 10) / 10 : value;
  if (range.above !== null && v <= range.above) return true;
  return range.up_to !== null && v > range.up_to;
}

export function vitalValue(sample, vital) {
  if (!sample) return { text: "–", abnormal: false };
  if (vital.key === "bp") {
    return { text: sample.bp ?? `${sample.systolic}/${sample.diastolic}`,
             abnormal: isAbnormal("systolic", sample.systolic) };
  }
  const value = sample[vital.key];
  const text = vital.key === "temperature" ? Number(value).toFixed(1) : String(value);
  return { text, abnormal: isAbnormal(vital.range, value) };
}

// The lowest normal value is one step above `above`: a tenth of a degree, or one unit.
export function describeRange(parameter) {
  const range = normalRange(parameter);
  if (!range) return "";
  const step = parameter === "temperature" ? 0.1 : 1;
  const digits = parameter === "temperature" ? 1 : 0;
  const lowest = (range.above + step).toFixed(digits);
  if (range.up_to === null) return `normal ≥ ${lowest}`;
  return `normal ${lowest}–${range.up_to.toFixed(digits)}`;
}
