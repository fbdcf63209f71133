// Robustness page: accuracy under common corruptions and PGD per epoch (json/robustness/heatmap),
// a corruption x severity heatmap with a step slider, accuracy against severity for every
// corruption across epochs (small multiples), trends, and the corrupted probes with predictions
// (robustness/examples, json/robustness/examples).

import { sparkline } from "./charts.js";
import { pretty, severityChart } from "./robustness_chart.js";
import { recordAt, showEmpty } from "./page.js";
import {
  api,
  fmtSig,
  getState,
  h,
  imageUrl,
  nearestStep,
  notice,
  pick,
  select,
  setChildren,
  setState,
  spacedSteps,
  stepper,
} from "./util.js";

const TABLE = "json/robustness/heatmap";
const EXAMPLES = "json/robustness/examples";
const MAX_RECORDS = 60;

// Red (0) -> yellow (0.5) -> green (1), as the logged heatmap image (matplotlib's RdYlGn).
const RDYLGN = [
  [165, 0, 38],
  [244, 109, 67],
  [254, 224, 139],
  [166, 217, 106],
  [26, 152, 80],
];

/** CSS colour of an accuracy in 0..1 on the red-yellow-green scale (grey when unknown). */
export function accuracyColor(value) {
  if (!Number.isFinite(value)) return "#e0e0e0";
  const v = Math.min(Math.max(value, 0), 1) * (RDYLGN.length - 1);
  const k = Math.min(Math.floor(v), RDYLGN.length - 2);
  const f = v - k;
  const c = RDYLGN[k].map((a, i) => Math.round(a * (1 - f) + RDYLGN[k + 1][i] * f));
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

/** An attack strength in 1/255 steps: 0.0313.. -> "8/255". */
function epsText(eps) {
  const k = eps * 255;
  return `${Math.abs(k - Math.round(k)) < 1e-6 ? Math.round(k) : fmtSig(k, 3)}/255`;
}
const pct = (v) => (Number.isFinite(v) ? `${(100 * v).toFixed(1)}%` : "–");

/**
 * Which images PGD attacked, e.g. "64 of 200 images" (the record's `count`; "" when not
 * logged): the attack runs on a subset, so its accuracy compares with the clean accuracy of
 * that subset (its accuracy at ε = 0), not with that of all images.
 */
export function pgdSubset(adv, count) {
  if (!adv || !Number.isInteger(adv.count)) return "";
  const of = Number.isInteger(count) && count !== adv.count ? ` of ${count}` : "";
  return `${adv.count}${of} images`;
}
const mean = (row) => row.reduce((a, b) => a + b, 0) / Math.max(row.length, 1);

function heatmapTable(p) {
  const head = h(
    "tr",
    null,
    h("th", { scope: "col" }, "corruption"),
    h("th", { scope: "col" }, "clean"),
    p.severities.map((s) => h("th", { scope: "col" }, `severity ${s}`)),
    h("th", { scope: "col" }, "mean"),
  );
  const cell = (v) =>
    h(
      "td",
      {
        class: "heat",
        title: Number.isFinite(v) ? String(v) : null,
        style: { background: accuracyColor(v), color: v < 0.2 || v > 0.85 ? "#fff" : "#000" },
      },
      Number.isFinite(v) ? v.toFixed(2) : "–",
    );
  const rows = p.corruptions.map((name, i) =>
    h(
      "tr",
      { dataset: { corruption: name } },
      h("th", { scope: "row" }, pretty(name)),
      cell(p.clean),
      p.accuracy[i].map(cell),
      cell(mean(p.accuracy[i])),
    ),
  );
  return h(
    "table",
    { class: "data robustness-heatmap", dataset: { rows: rows.length } },
    h("thead", null, head),
    h("tbody", null, rows),
  );
}

function trends(records, current) {
  const steps = records.map((r) => r.step);
  const rows = [
    ["clean accuracy", records.map((r) => r.payload.clean)],
    ["mean corrupted accuracy", records.map((r) => r.payload.mean)],
    [
      `mCE vs epoch ${records[0].payload.baseline_step ?? steps[0]} (lower is better)`,
      records.map((r) => r.payload.mce),
    ],
  ];
  const adv = records.find((r) => r.payload.adversarial)?.payload.adversarial;
  const subset = adv && Number.isInteger(adv.count) ? ` (${adv.count} images)` : "";
  (adv ? adv.epsilons : []).forEach((eps, i) => {
    if (eps > 0) {
      const label = `PGD accuracy at ε = ${epsText(eps)}${subset}`;
      rows.push([label, records.map((r) => r.payload.adversarial?.accuracy?.[i] ?? null)]);
    }
  });
  return h(
    "div",
    { class: "robustness-trends" },
    rows.map(([name, values]) => {
      const i = steps.indexOf(current);
      return h(
        "span",
        { class: "trend", title: name },
        h("span", { class: "trend-name" }, name),
        sparkline(steps, values, { current }),
        h("span", { class: "trend-value" }, fmtSig(values[i], 3)),
      );
    }),
  );
}

const MCE_HELP =
  "Mean corruption error against the first record (Hendrycks & Dietterich 2019): for each " +
  "corruption, the errors summed over the severities divided by those of the first record, " +
  "averaged. 1 = as many errors as then; lower is better.";

function summary(p) {
  const parts = [
    ["images", String(p.count)],
    ["clean accuracy", pct(p.clean)],
    ["mean corrupted", pct(p.mean)],
    [`mCE vs epoch ${p.baseline_step}`, fmtSig(p.mce, 3), MCE_HELP],
  ];
  const adv = p.adversarial;
  if (adv) {
    // Clean (ε = 0) first, then each attack strength, all on the same attacked images.
    const subset = pgdSubset(adv, p.count);
    const steps = adv.epsilons.map(
      (eps, i) => `${eps > 0 ? `ε ${epsText(eps)}` : "clean"} ${pct(adv.accuracy[i])}`,
    );
    const help = subset
      ? `PGD attacks ${subset}; "clean" is the accuracy on those before the attack.`
      : null;
    parts.push([subset ? `PGD on ${subset}` : "PGD", steps.join(" → "), help]);
  }
  const cost = p.seconds || {};
  if (Number.isFinite(cost.corruptions)) {
    const attack =
      Number.isFinite(cost.attack) && cost.attack > 0 ? ` + PGD ${cost.attack.toFixed(1)} s` : "";
    parts.push(["cost", `corruptions ${cost.corruptions.toFixed(1)} s${attack}`]);
  }
  return h(
    "dl",
    { class: "robustness-summary" },
    parts.map(([k, v, help]) => h("div", { title: help }, h("dt", null, k), h("dd", null, v))),
  );
}

function examplesTable(run, step, p, corruption) {
  const ci = p.corruptions.indexOf(corruption);
  const nP = p.n_probes;
  const names = p.class_names;
  const className = (c) => (names && names[c] !== undefined ? names[c] : `class ${c}`);
  const cell = (row, probe) => {
    const predicted = p.predictions[row][probe];
    const label = p.labels ? p.labels[probe] : null;
    const right = label === null ? null : predicted === label;
    const image = h("img", {
      src: imageUrl(run, "robustness/examples", step, row * nP + probe),
      alt: `${row ? pretty(corruption) : "clean"} probe ${probe}`,
      class: "tile",
    });
    return h(
      "td",
      {
        class: `example ${right === null ? "" : right ? "right" : "wrong"}`,
        dataset: { row, probe },
      },
      image,
      h(
        "div",
        { class: "caption" },
        `${className(predicted)} `,
        h("span", { class: "muted" }, fmtSig(p.scores[row][probe], 2)),
      ),
    );
  };
  const head = h(
    "tr",
    null,
    h("th", { scope: "col" }, "label"),
    h("th", { scope: "col" }, "clean"),
    p.severities.map((s) => h("th", { scope: "col" }, `severity ${s}`)),
  );
  const body = [];
  for (let probe = 0; probe < nP; probe++) {
    const rows = p.severities.map((_, si) => 1 + ci * p.severities.length + si);
    body.push(
      h(
        "tr",
        null,
        h("th", { scope: "row" }, p.labels ? className(p.labels[probe]) : "–"),
        cell(0, probe),
        rows.map((row) => cell(row, probe)),
      ),
    );
  }
  return h(
    "table",
    { class: "robustness-examples", dataset: { probes: nP } },
    h("thead", null, head),
    h("tbody", null, body),
  );
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const tags = await api("tags", { run, kind: "robustness" });
  if (!ctx.alive()) return null;
  if (tags.json.heatmap !== TABLE) {
    showEmpty(el, notice(`The run “${run}” has no robustness tables (json/robustness/heatmap).`));
    return null;
  }
  const info = await api("steps", { run, tag: TABLE });
  const steps = spacedSteps(info.steps, MAX_RECORDS);
  const records = await Promise.all(
    steps.map(async (s) => ({ step: s, payload: await api("data", { run, tag: TABLE, step: s }) })),
  );
  if (!ctx.alive()) return null;
  let step = nearestStep(steps, getState("step"));
  const last = records[records.length - 1].payload;
  const corruption = pick(last.corruptions, getState("corruption"));
  setState({ step, corruption });

  const heat = h("div", { class: "table-wrap" });
  const head = h("div");
  const charts = h("div", { class: "row severity-charts" });
  const trendBox = h("div");
  const examples = h("div", { class: "examples-wrap" });

  function severitySeries(pick) {
    return records.map((r) => ({ step: r.step, values: [r.payload.clean, ...pick(r.payload)] }));
  }

  async function show() {
    const record = records.find((r) => r.step === step) || records[records.length - 1];
    const p = record.payload;
    setChildren(head, summary(p));
    setChildren(heat, heatmapTable(p));
    const severities = p.severities;
    setChildren(
      charts,
      severityChart(
        "mean over corruptions",
        severities,
        severitySeries((q) => q.by_severity),
        step,
      ),
      p.corruptions.map((name) =>
        severityChart(
          name,
          severities,
          severitySeries((q) => q.accuracy[q.corruptions.indexOf(name)] || []),
          step,
        ),
      ),
    );
    setChildren(trendBox, trends(records, step));
    el.dataset.step = String(step);
    if (!tags.json.examples) {
      setChildren(examples, notice("No corrupted examples were logged (n_probes=0)."));
      return;
    }
    const ex = await recordAt(run, EXAMPLES, step);
    if (!ctx.alive()) return;
    if (!ex || !ex.payload.n_probes) {
      setChildren(examples, notice("No corrupted examples at this epoch."));
      return;
    }
    const q = ex.payload;
    const chosen = pick(q.corruptions, getState("corruption"));
    const picker = select(
      "Corruption",
      q.corruptions.map((c) => [c, pretty(c)]),
      chosen,
      (value) => {
        setState({ corruption: value });
        show();
      },
      { id: "cnnvis-corruption" },
    );
    setChildren(
      examples,
      h("div", { class: "controls" }, picker),
      h(
        "p",
        { class: "meta" },
        `Predictions at epoch ${ex.step}: green right, red wrong; the number is the score of the predicted class.`,
      ),
      examplesTable(run, ex.step, q, chosen),
    );
  }

  const play = stepper(steps, step, (s) => {
    step = s;
    setState({ step: s });
    show();
  });
  el.append(
    h(
      "p",
      { class: "lead" },
      "How accuracy holds up when the validation images are corrupted (noise, blur, weather, " +
        "digital: Hendrycks & Dietterich 2019) or attacked (PGD), epoch by epoch. Every record " +
        "uses the same images and the same corruption noise, so only the model changes.",
    ),
    h("div", { class: "controls" }, play.el),
    head,
    h("h3", null, "Accuracy per corruption and severity"),
    heat,
    h("h3", null, "Accuracy against severity, epoch by epoch"),
    h(
      "p",
      { class: "meta" },
      "One line per epoch, earlier ones lighter; the orange line is the epoch on the slider.",
    ),
    charts,
    h("h3", null, "Over training"),
    trendBox,
    h("h3", null, "Corrupted examples"),
    examples,
  );
  el.dataset.records = String(records.length);
  await show();
  return () => play.stop();
}
