// Drawing helpers of the cnnvis dashboard: colormaps for attribution maps, a categorical
// palette for classes, and SVG: elements built from text, path data, small trend lines.

const ANCHORS = {
  inferno: [
    [0, 0, 4],
    [87, 16, 110],
    [188, 55, 84],
    [249, 142, 9],
    [252, 255, 164],
  ],
  viridis: [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ],
  jet: [
    [0, 0, 143],
    [0, 112, 255],
    [127, 255, 127],
    [255, 143, 0],
    [128, 0, 0],
  ],
};

export const COLORMAPS = Object.keys(ANCHORS);
const lutCache = new Map();

/** A 256 x RGB lookup table (Uint8ClampedArray of 768) for a named colormap. */
export function colormapLut(name) {
  if (!lutCache.has(name)) {
    const anchors = ANCHORS[name] || ANCHORS.inferno;
    const lut = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const v = (i / 255) * (anchors.length - 1);
      const k = Math.min(Math.floor(v), anchors.length - 2);
      const f = v - k;
      for (let c = 0; c < 3; c++) lut[i * 3 + c] = anchors[k][c] * (1 - f) + anchors[k + 1][c] * f;
    }
    lutCache.set(name, lut);
  }
  return lutCache.get(name);
}

/** Paints a row-major map of values in 0..1 into an offscreen canvas of its own size. */
export function mapCanvas(values, height, width, cmap) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext("2d");
  const image = g.createImageData(width, height);
  const lut = colormapLut(cmap);
  for (let i = 0; i < width * height; i++) {
    const v = values[i];
    const k = Number.isFinite(v) ? Math.round(Math.min(Math.max(v, 0), 1) * 255) : 0;
    image.data[i * 4] = lut[k * 3];
    image.data[i * 4 + 1] = lut[k * 3 + 1];
    image.data[i * 4 + 2] = lut[k * 3 + 2];
    image.data[i * 4 + 3] = 255;
  }
  g.putImageData(image, 0, 0);
  return canvas;
}

const PALETTE = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** Colour of class `index` (cycles after ten classes; black for unknown). */
export function classColor(index) {
  if (!Number.isInteger(index) || index < 0) return "#000000";
  return PALETTE[index % PALETTE.length];
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element. Children that are not Nodes become text nodes (never parsed as markup). */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** SVG path data through the points `[x, y]`; a null point lifts the pen (leaves a gap). */
export function pathData(points) {
  let d = "";
  let pen = false;
  for (const p of points) {
    if (p) d += `${pen ? "L" : "M"}${p[0].toFixed(1)},${p[1].toFixed(1)}`;
    pen = Boolean(p);
  }
  return d;
}

/**
 * A small SVG chart of lines over `steps` on one shared scale, 3 px inside its box (a flat
 * range sits in the middle). `lines` are [values, class] pairs, drawn in order; non-finite
 * values leave gaps. Returns {root, x, y} (the scales are null when no value is finite).
 */
export function trendLines(steps, lines, { width, height, className }) {
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: className });
  const finite = lines.flatMap(([values]) => values).filter(Number.isFinite);
  if (!finite.length) return { root, x: null, y: null };
  const pad = 3;
  const lo = Math.min(...finite);
  const hi = Math.max(...finite);
  const s0 = steps[0];
  const s1 = steps[steps.length - 1];
  const x = (s) => pad + (s1 === s0 ? 0.5 : (s - s0) / (s1 - s0)) * (width - 2 * pad);
  const y = (v) => height - pad - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (height - 2 * pad);
  for (const [values, cls] of lines) {
    const points = steps.map((s, i) => (Number.isFinite(values[i]) ? [x(s), y(values[i])] : null));
    const d = pathData(points);
    if (d) root.append(svg("path", { d, class: cls }));
  }
  return { root, x, y };
}

/**
 * A small SVG line of `values` over `steps` (nulls leave gaps) with a marker at `current`.
 * Returns the <svg> element; `data-points` holds the number of plotted values.
 */
export function sparkline(steps, values, { width = 140, height = 34, current = null } = {}) {
  const { root, x, y } = trendLines(steps, [[values, "line"]], {
    width,
    height,
    className: "sparkline",
  });
  root.setAttribute("role", "img");
  root.dataset.points = String(values.filter(Number.isFinite).length);
  const i = current === null ? -1 : steps.indexOf(current);
  if (x && i >= 0 && Number.isFinite(values[i])) {
    root.append(svg("circle", { cx: x(steps[i]), cy: y(values[i]), r: 2.5, class: "marker" }));
  }
  return root;
}
