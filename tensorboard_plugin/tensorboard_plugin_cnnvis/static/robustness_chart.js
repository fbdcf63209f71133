// The small multiples of the Robustness page: accuracy against severity (clean first) for one
// corruption, one line per epoch, drawn as SVG.

import { pathData, svg } from "./charts.js";
import { fmtSig, h } from "./util.js";

/** A corruption's name for people: "gaussian_noise" -> "gaussian noise". */
export const pretty = (name) => String(name).replaceAll("_", " ");

/**
 * Accuracy against severity (clean first) for one corruption: one line per epoch, earlier
 * epochs lighter, the current epoch in the accent colour. `series` are {step, values}.
 */
export function severityChart(title, severities, series, current) {
  const W = 186;
  const H = 140;
  const L = 30;
  const R = 8;
  const T = 8;
  const B = 22;
  const xs = ["clean", ...severities.map(String)];
  const x = (i) => L + (i / Math.max(xs.length - 1, 1)) * (W - L - R);
  const y = (v) => T + (1 - v) * (H - T - B);
  const root = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, role: "img" });
  root.classList.add("severity-chart");
  for (const v of [0, 0.5, 1]) {
    root.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }));
    root.append(
      svg("text", { x: L - 4, y: y(v) + 3, class: "tick", "text-anchor": "end" }, String(v)),
    );
  }
  xs.forEach((label, i) =>
    root.append(svg("text", { x: x(i), y: H - 6, class: "tick", "text-anchor": "middle" }, label)),
  );
  const n = series.length;
  series.forEach((s, k) => {
    if (s.step === current) return;
    const shade = n > 1 ? 0.25 + 0.6 * (k / (n - 1)) : 0.6;
    root.append(
      path(s, x, y, { stroke: `rgba(26, 82, 118, ${shade.toFixed(2)})`, class: "epoch" }),
    );
  });
  const now = series.find((s) => s.step === current);
  if (now) root.append(path(now, x, y, { class: "epoch current" }));
  const box = h("figure", { class: "panel severity-panel", dataset: { corruption: title } });
  box.append(h("figcaption", null, pretty(title)), root);
  return box;
}

/** One epoch's line; a severity without a value is skipped (the line joins its neighbours). */
function path(s, x, y, attrs) {
  const points = s.values.map((v, i) => (Number.isFinite(v) ? [x(i), y(v)] : null));
  const d = pathData(points.filter(Boolean));
  const el = svg("path", { d, fill: "none", ...attrs, "data-step": s.step });
  el.append(svg("title", null, `epoch ${s.step}: ${s.values.map((v) => fmtSig(v, 2)).join(", ")}`));
  return el;
}
