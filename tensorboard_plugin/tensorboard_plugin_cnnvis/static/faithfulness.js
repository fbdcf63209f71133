// Faithfulness on the Attribution page: deletion and insertion areas and MuFidelity of each
// method against the random-map reference (scalars faithfulness/<method>/<score> and the
// `faithfulness` entry of json/attribution/<method>, see docs/log-format.md).

import { pathData, svg, trendLines } from "./charts.js";
import { api, h, setChildren } from "./util.js";

export const RANDOM = "random";

/** The three scores: record key, column label, and which way is better. */
export const SCORES = [
  { key: "deletion_auc", label: "Deletion AUC", lower: true },
  { key: "insertion_auc", label: "Insertion AUC", lower: false },
  { key: "mu_fidelity", label: "MuFidelity", lower: false },
];

const num = (v) => (Number.isFinite(v) ? v.toFixed(3) : "–");
const short = (v) => String(Number(v.toFixed(2)));
const arrow = (score) => (score.lower ? "↓" : "↑");

/** Differences smaller than this read as a tie with chance (they vanish at 3 decimals). */
export const TIE = 0.005;

/**
 * "beats" when `value` is better than the reference `chance` on `score` by at least `TIE`,
 * "fails" when it is worse by as much, "ties" in between, "" when either is missing.
 */
export function verdict(score, value, chance) {
  if (!Number.isFinite(value) || !Number.isFinite(chance)) return "";
  const gain = score.lower ? chance - value : value - chance;
  return gain >= TIE ? "beats" : gain <= -TIE ? "fails" : "ties";
}

function tagsOf(name) {
  return SCORES.map((s) => `faithfulness/${name}/${s.key}`);
}

/** `{key: {steps, values}}` from a scalars answer for `tagsOf(name)`. */
function bySeries(answer) {
  const out = {};
  for (const s of answer.series) out[s.tag.split("/").pop()] = { steps: s.steps, values: s.values };
  return out;
}

/** The value of a series at `step` (null when it was not logged then). */
export function valueAt(series, step) {
  if (!series) return null;
  const i = series.steps.indexOf(step);
  return i < 0 ? null : series.values[i];
}

/**
 * Reads the faithfulness of every method of the run: each method's last JSON record (its
 * `faithfulness` entry, if any) and, for those that have one, the scalar series of the
 * method and of the random reference. Only tags that a record proves written are asked
 * for. Resolves to {methods: [{name, step, entry, series}], random: series or null}.
 */
export async function loadFaithfulness(run, jsonTags) {
  const methods = await Promise.all(
    Object.entries(jsonTags).map(async ([name, tag]) => {
      const { steps } = await api("steps", { run, tag });
      if (!steps.length) return null;
      const step = steps[steps.length - 1];
      const payload = await api("data", { run, tag, step });
      const entry = payload.faithfulness;
      if (!entry) return null;
      const series = bySeries(await api("scalars", { run, tag: tagsOf(name) }));
      return { name, step, entry, series };
    }),
  );
  const scored = methods.filter(Boolean);
  const withRandom = scored.some((m) => m.entry.random);
  const random = withRandom ? bySeries(await api("scalars", { run, tag: tagsOf(RANDOM) })) : null;
  return { methods: scored, random };
}

/** A small two-line SVG chart over steps: the method (accent) and the reference (dashed). */
function trend(steps, values, reference, { width = 120, height = 30 } = {}) {
  const lines = [
    [reference, "reference"],
    [values, "method"],
  ];
  const { root } = trendLines(steps, lines, { width, height, className: "faith-trend" });
  root.dataset.points = String(values.filter(Number.isFinite).length);
  return root;
}

/** A method's and the reference's values of `score` over the method's steps. */
function seriesPair(method, random, score) {
  const own = method.series[score.key] || { steps: [], values: [] };
  const ref = random ? random[score.key] : null;
  return { steps: own.steps, values: own.values, reference: own.steps.map((s) => valueAt(ref, s)) };
}

/**
 * The table of every scored method at its last logged step, with the random reference:
 * value, a trend over steps (method against reference), and whether it beats chance. The
 * best method per score is marked; clicking a row calls `onPick(name)`.
 */
export function comparisonTable(data, current, onPick) {
  const { methods, random } = data;
  // Values at each method's last step: the scalars (full precision), else the record's.
  const own = (m, score) => valueAt(m.series[score.key], m.step) ?? m.entry.scores?.[score.key];
  const chanceAt = (m, score) =>
    (random ? valueAt(random[score.key], m.step) : null) ?? m.entry.random?.[score.key];
  const best = {};
  for (const score of SCORES) {
    const values = methods.map((m) => own(m, score)).filter(Number.isFinite);
    if (values.length > 1) best[score.key] = score.lower ? Math.min(...values) : Math.max(...values);
  }
  const rows = methods.map((m) =>
    h(
      "tr",
      {
        class: m.name === current ? "selected" : null,
        dataset: { method: m.name },
        onclick: () => onPick(m.name),
      },
      h(
        "th",
        { scope: "row" },
        h("button", { type: "button", class: "link" }, m.name.replaceAll("_", "-")),
      ),
      h("td", { class: "num" }, String(m.step)),
      SCORES.map((score) => {
        const value = own(m, score);
        const chance = chanceAt(m, score);
        const pair = seriesPair(m, random, score);
        return h(
          "td",
          {
            class: `faith-score ${verdict(score, value, chance)}`,
            dataset: { score: score.key, value: Number.isFinite(value) ? value : "" },
            title:
              `${score.label} at epoch ${m.step}: ${num(value)}; random maps ${num(chance)} ` +
              `(${score.lower ? "lower" : "higher"} is better)`,
          },
          h(
            "span",
            { class: `faith-value${value === best[score.key] ? " best" : ""}` },
            num(value),
          ),
          trend(pair.steps, pair.values, pair.reference),
        );
      }),
    ),
  );
  // The reference at the last step it was logged (each method is judged at its own step).
  const steps = random ? random[SCORES[0].key]?.steps || [] : [];
  const last = steps.length ? steps[steps.length - 1] : null;
  const chanceRow = h(
    "tr",
    { class: "faith-random", dataset: { method: RANDOM } },
    h("th", { scope: "row" }, "random maps"),
    h("td", { class: "num" }, last === null ? "" : String(last)),
    SCORES.map((score) => {
      const chance = valueAt(random?.[score.key], last);
      return h(
        "td",
        { class: "faith-score", dataset: { score: score.key, value: Number.isFinite(chance) ? chance : "" } },
        h("span", { class: "faith-value" }, num(chance)),
      );
    }),
  );
  return h(
    "table",
    { class: "data faith-table" },
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        h("th", null, "method"),
        h("th", null, "epoch"),
        SCORES.map((s) => h("th", { title: s.lower ? "lower is better" : "higher is better" }, `${s.label} ${arrow(s)}`)),
      ),
    ),
    h("tbody", null, rows, random ? chanceRow : ""),
  );
}

/** An SVG plot of a mean curve and the reference's over the fraction of pixels. */
function curvePlot(title, fractions, curve, reference, { width = 230, height = 150 } = {}) {
  const pad = { left: 34, right: 8, top: 20, bottom: 26 };
  const values = [...curve, ...(reference || [])].filter(Number.isFinite);
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "faith-curve", role: "img" });
  if (!values.length) return root;
  const span = Math.max(...values) - Math.min(...values);
  const margin = Math.max(span * 0.1, 0.01);
  const lo = Math.min(...values) - margin;
  const hi = Math.max(...values) + margin;
  const x = (f) => pad.left + f * (width - pad.left - pad.right);
  const y = (v) => height - pad.bottom - ((v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  const path = (vals) =>
    pathData(vals.map((v, i) => (Number.isFinite(v) ? [x(fractions[i]), y(v)] : null)));
  root.append(
    svg("text", { x: pad.left, y: 13, class: "title" }, title),
    svg("line", { x1: x(0), y1: y(lo), x2: x(1), y2: y(lo), class: "axis" }),
    svg("line", { x1: x(0), y1: y(lo), x2: x(0), y2: y(hi), class: "axis" }),
    svg("text", { x: x(0), y: height - 8, class: "tick" }, "0"),
    svg("text", { x: x(1), y: height - 8, class: "tick end" }, "1"),
    svg("text", { x: (x(0) + x(1)) / 2, y: height - 8, class: "tick middle" }, "fraction of pixels"),
    svg("text", { x: pad.left - 4, y: y(lo) + 4, class: "tick end" }, short(lo)),
    svg("text", { x: pad.left - 4, y: y(hi) + 4, class: "tick end" }, short(hi)),
  );
  if (reference) root.append(svg("path", { d: path(reference), class: "reference" }));
  root.append(svg("path", { d: path(curve), class: "method" }));
  return root;
}

/** The deletion and insertion curves of one record's `faithfulness` entry at `step`. */
export function curvesFigure(method, entry, step) {
  const c = entry.curves || {};
  const figure = h("figure", { class: "faith-curves", dataset: { step } });
  if (!Array.isArray(c.fractions)) return figure;
  const s = entry.settings || {};
  const base = typeof s.baseline === "string" ? s.baseline : "custom";
  setChildren(
    figure,
    h(
      "figcaption",
      null,
      `${method.replaceAll("_", "-")} at epoch ${step}: the explained score as the map's top pixels are ` +
        `removed (deletion) or put back (insertion), mean over probes; baseline ${base}.`,
    ),
    h(
      "div",
      { class: "faith-plots" },
      curvePlot("Deletion ↓", c.fractions, c.deletion, c.random_deletion),
      curvePlot("Insertion ↑", c.fractions, c.insertion, c.random_insertion),
    ),
    h(
      "div",
      { class: "legend" },
      h("span", { class: "swatch method" }),
      method.replaceAll("_", "-"),
      h("span", { class: "swatch reference" }),
      "random maps",
    ),
  );
  return figure;
}

/**
 * Rows under the matrix, one per score: the method's value at each step column with the
 * random reference under it, green when it beats chance. Clicking a cell calls
 * `onStep(step)`.
 */
export function footerRows(steps, method, random, onStep) {
  return SCORES.map((score) =>
    h(
      "tr",
      { class: "faith-row", dataset: { score: score.key } },
      h("th", { scope: "row", class: "faith-head" }, `${score.label} ${arrow(score)}`),
      steps.map((step) => {
        const value = valueAt(method.series[score.key], step);
        const chance = random ? valueAt(random[score.key], step) : null;
        if (value === null) return h("td", { class: "faith-cell" }, "");
        return h(
          "td",
          {
            class: `faith-cell ${verdict(score, value, chance)}`,
            dataset: { step, value },
            title: `${score.label} at epoch ${step}: ${num(value)}; random maps ${num(chance)}`,
            onclick: () => onStep(step),
          },
          h("span", { class: "faith-value" }, num(value)),
          h("span", { class: "faith-chance" }, `rand ${num(chance)}`),
        );
      }),
    ),
  );
}

/** A line for a probe's tooltip from a record's per-probe scores. */
export function probeScores(entry, i) {
  const p = entry?.probes?.[i];
  if (!p) return "";
  return SCORES.map((s) => `${s.label.toLowerCase()} ${num(p[s.key])}`).join(" · ");
}

/** What the scores mean and how they were computed, from a record's settings. */
export function explanation(entry, nProbes) {
  const s = entry?.settings || {};
  const base = typeof s.baseline === "string" ? s.baseline : "custom";
  return (
    "Which map to trust. Deletion: the pixels a map ranks highest are blurred away first; " +
    "the area under the explained score should be small. Insertion: they are put back into " +
    "a blurred image first; the area should be large. MuFidelity: the map's sum over random " +
    "regions should rank the score's drop when they are removed (1 = perfectly). Random " +
    `maps give chance level (green: better, red: worse, amber: within ${TIE}). ` +
    `${nProbes} probes, ${s.steps ?? "?"} steps, ${base} baseline, MuFidelity on ` +
    `${s.nb_samples ?? "?"} subsets of a ${s.grid_size ?? "?"}×${s.grid_size ?? "?"} grid.`
  );
}
