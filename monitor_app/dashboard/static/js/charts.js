// Trend charts (uPlot, vendored): per bucket the average as a line and min–max as a band,
// over the whole window, with the range NEWS2 scores 0 shaded green behind.
import { el } from "./dom.js";
import { describeRange, normalRange } from "./vitals.js";

export const CHARTS = [
  { key: "pulse", title: "Pulse", unit: "bpm", range: "pulse", lines: [["pulse", "#ff6b6b"]] },
  { key: "resp_rate", title: "Respiratory rate", unit: "/min", range: "resp_rate",
    lines: [["resp_rate", "#ffd166"]] },
  { key: "bp", title: "Blood pressure", unit: "mmHg", range: "systolic",
    lines: [["systolic", "#4fa3ff"], ["diastolic", "#9ecbff"]] },
  { key: "spo2", title: "SpO₂", unit: "%", range: "spo2", lines: [["spo2", "#06d6a0"]], ceiling: 100 },
  { key: "temperature", title: "Temperature", unit: "°C", range: "temperature",
    lines: [["temperature", "#f78c6b"]] },
  { key: "news2_score", title: "NEWS2", unit: "score", range: null, lines: [["news2_score", "#e0e0e0"]],
    thresholds: [5, 7] },
];

const AXIS = { stroke: "#8b9bab", grid: { stroke: "#2c3a48", width: 1 }, ticks: { stroke: "#2c3a48" } };
// Buckets further apart than this many widths are a gap in the monitoring, drawn as one.
const GAP_BUCKETS = 3;

export class TrendChart {
  constructor(spec, container) {
    this.spec = spec;
    this.window = [0, 1];
    this.node = el("div", { class: "chart", dataset: { vital: spec.key, points: "0" } },
      el("h3", {}, `${spec.title} (${spec.unit})`,
        el("span", { class: "range" }, spec.range ? describeRange(spec.range) : "5–6 medium · 7+ high")));
    container.append(this.node);
    this.plot = new uPlot(this.options(), this.emptyData(), this.node);
  }

  options() {
    const spec = this.spec;
    const series = [{}];
    const bands = [];
    for (const [field, colour] of spec.lines) {
      const min = series.length;
      series.push({ label: `${field} min`, stroke: "transparent", points: { show: false } },
                  { label: `${field} max`, stroke: "transparent", points: { show: false } },
                  { label: field.replace("_", " "), stroke: colour, width: 2, points: { show: false } });
      bands.push({ series: [min + 1, min], fill: `${colour}33` });
    }
    return {
      width: this.width(), height: 170,
      legend: { show: false },
      cursor: { drag: { x: false, y: false } },
      scales: {
        x: { time: true, range: () => this.window },
        y: { range: (_u, low, high) => this.yRange(low, high) },
      },
      axes: [{ ...AXIS }, { ...AXIS, size: 44 }],
      series,
      bands,
      hooks: { drawAxes: [(u) => this.shadeNormal(u)] },
    };
  }

  yRange(low, high) {
    const range = this.spec.range ? normalRange(this.spec.range) : null;
    let values = [low, high];
    if (range) values.push(range.above, range.up_to);
    if (this.spec.thresholds) values.push(0, ...this.spec.thresholds);
    values = values.filter((v) => v !== null && v !== undefined && Number.isFinite(v));
    let bottom = Math.min(...values);
    let top = Math.max(...values);
    const pad = Math.max((top - bottom) * 0.08, 0.5);
    bottom -= pad;
    top += pad;
    if (this.spec.ceiling !== undefined) top = Math.min(top, this.spec.ceiling + pad);
    return [bottom, top];
  }

  shadeNormal(u) {
    const { ctx, bbox } = u;
    const bands = [];
    const range = this.spec.range ? normalRange(this.spec.range) : null;
    if (range) bands.push([range.above, range.up_to, "rgba(67, 160, 71, 0.12)"]);
    for (const [from, to, colour] of this.thresholdBands()) bands.push([from, to, colour]);
    ctx.save();
    for (const [from, to, colour] of bands) {
      const y1 = to === null ? bbox.top : u.valToPos(to, "y", true);
      const y2 = from === null ? bbox.top + bbox.height : u.valToPos(from, "y", true);
      const top = Math.max(bbox.top, Math.min(y1, y2));
      const bottom = Math.min(bbox.top + bbox.height, Math.max(y1, y2));
      if (bottom <= top) continue;
      ctx.fillStyle = colour;
      ctx.fillRect(bbox.left, top, bbox.width, bottom - top);
    }
    ctx.restore();
  }

  thresholdBands() {
    if (!this.spec.thresholds) return [];
    const [medium, high] = this.spec.thresholds;
    return [[medium - 0.5, high - 0.5, "rgba(239, 108, 0, 0.12)"], [high - 0.5, null, "rgba(198, 40, 40, 0.14)"]];
  }

  emptyData() {
    return [[], ...this.spec.lines.flatMap(() => [[], [], []])];
  }

  // `history` is the API's answer: {from, to, bucket_seconds, buckets: [...]}.
  show(history) {
    this.window = [Date.parse(history.from) / 1000, Date.parse(history.to) / 1000];
    const data = this.emptyData();
    let previous = null;
    for (const bucket of history.buckets) {
      const x = Date.parse(bucket.start) / 1000;
      if (previous !== null && x - previous > GAP_BUCKETS * history.bucket_seconds) {
        data[0].push(previous + history.bucket_seconds);
        for (let i = 1; i < data.length; i += 1) data[i].push(null);
      }
      data[0].push(x);
      this.spec.lines.forEach(([field], index) => {
        const stats = bucket[field] || {};
        data[1 + index * 3].push(stats.min ?? null);
        data[2 + index * 3].push(stats.max ?? null);
        data[3 + index * 3].push(stats.avg ?? null);
      });
      previous = x;
    }
    this.node.dataset.points = String(history.buckets.length);
    this.plot.setData(data);
  }

  width() {
    return Math.max(280, (this.node?.clientWidth || 420) - 16);
  }

  resize() {
    this.plot.setSize({ width: this.width(), height: 170 });
  }
}
