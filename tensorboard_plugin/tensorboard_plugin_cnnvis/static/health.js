// Health page: per-layer verdicts and score trends over epochs, then one layer's flagged filter
// grid and a sortable per-filter table (json/health/<layer>, health/<layer>, scalars).

import { sparkline } from "./charts.js";
import { imagePanel, openPage, recordAt, stepAt } from "./page.js";
import {
  api,
  fmt,
  fmtSig,
  getState,
  h,
  imageUrl,
  nearestStep,
  notice,
  pick,
  setChildren,
  setState,
} from "./util.js";

/** The order of the trend columns (FilterHealthCallback's scalars); other scores follow. */
const SCORE_ORDER = [
  "noise_like_fraction",
  "dead_fraction",
  "saturated_fraction",
  "mean_drift",
  "median_update_ratio",
  "spectral_alpha",
  "spike_ratio",
];

/**
 * A number as the page shows it: integers (counts, indices) as they are, every other number
 * with 3 significant digits (0.03125 -> "0.0313", 0.1563 -> "0.156", 5.2e-11 -> "5.20e-11",
 * never "≈0": tiny outputs are a finding here); anything else as `fmt` shows it.
 */
export function fmtNum(value) {
  if (typeof value !== "number" || !Number.isFinite(value) || Number.isInteger(value)) {
    return fmt(value);
  }
  return fmtSig(value, 3, 0);
}

/** "good", "mid", "bad" or "frozen" for a verdict string, to colour its badge. */
export function verdictClass(verdict) {
  const text = String(verdict || "").toLowerCase();
  if (/^frozen\b/.test(text)) return "frozen";
  if (/(not|dead|nois|stall|diverg|fail|bad|warn|unstable|stuck|collaps)/.test(text)) return "bad";
  if (/(healthy|ok|good|converg|learn|fine)/.test(text)) return "good";
  return "mid";
}

/**
 * The badge of a health record. The record says itself whether the layer converges
 * (`converged`), whether the fit trains it at all (`frozen`) and what it found (`problems`):
 * red only for a non-converged layer, neutral slate for a frozen one (weights not trained in
 * this fit, by the user's choice), amber for findings on a converging one (a few dead units,
 * weak evidence). Records without those fields fall back to reading the verdict text.
 */
export function badgeTone(payload) {
  if (typeof payload?.converged !== "boolean") return verdictClass(payload?.verdict);
  if (!payload.converged) return "bad";
  if (payload.frozen === true) return "frozen";
  return (payload.problems || []).length ? "mid" : "good";
}

const FROZEN_HELP =
  "Frozen: the fit does not train this layer (trainable=False on it or on a model around it)";

function badge(payload) {
  const tone = badgeTone(payload);
  const title = tone === "frozen" ? FROZEN_HELP : null;
  return h("span", { class: `verdict ${tone}`, title }, payload?.verdict ?? "unknown");
}

/** The score names of the trend columns, in a fixed order, from every layer's scalar tags. */
function scoreColumns(tags, layers) {
  const names = new Set();
  for (const layer of layers) {
    for (const tag of tags.scalars[layer] || []) names.add(scoreName(tag, layer));
  }
  const known = SCORE_ORDER.filter((n) => names.has(n));
  return [...known, ...[...names].filter((n) => !SCORE_ORDER.includes(n)).sort()];
}

function scoreName(tag, layer) {
  const prefix = `health/${layer}/`;
  return tag.startsWith(prefix) ? tag.slice(prefix.length) : tag.split("/").pop();
}

function sortValue(value) {
  if (value === null || value === undefined) return null;
  if (typeof value === "boolean") return value ? 1 : 0;
  return value;
}

function compareValues(a, b) {
  const x = sortValue(a);
  const y = sortValue(b);
  if (x === null && y === null) return 0;
  if (x === null) return 1;
  if (y === null) return -1;
  if (typeof x === "number" && typeof y === "number") return x - y;
  return String(x).localeCompare(String(y));
}

function filterTable(payload, onSort) {
  const flagsOf = new Map();
  for (const [flag, indices] of Object.entries(payload.flags || {})) {
    for (const i of indices || []) flagsOf.set(i, [...(flagsOf.get(i) || []), flag]);
  }
  let columns = Array.isArray(payload.columns) && payload.columns.length ? payload.columns : null;
  const rows = Array.isArray(payload.filters) ? payload.filters : [];
  if (!columns) columns = rows.length ? Object.keys(rows[0]) : ["index"];
  if (!columns.includes("index")) columns = ["index", ...columns];
  const all = [...columns, "flags"];
  const sortKey = pick(all, getState("sort"), "index");
  const desc = getState("desc") === "1";
  const sorted = rows
    .map((row) => ({ row, flags: flagsOf.get(row.index) || [] }))
    .sort((a, b) => {
      const va = sortKey === "flags" ? a.flags.join(",") || null : a.row[sortKey];
      const vb = sortKey === "flags" ? b.flags.join(",") || null : b.row[sortKey];
      const c = compareValues(va, vb);
      return desc && c !== 0 && va !== null && vb !== null ? -c : c;
    });
  const head = h(
    "tr",
    null,
    all.map((col) =>
      h(
        "th",
        {
          scope: "col",
          class: col === sortKey ? `sorted ${desc ? "desc" : "asc"}` : null,
          "aria-sort": col === sortKey ? (desc ? "descending" : "ascending") : null,
          dataset: { col },
          tabindex: 0,
          title: "Sort by this column",
          onclick: () => onSort(col, col === sortKey ? !desc : false),
          onkeydown: (e) => {
            if (e.key !== "Enter" && e.key !== " ") return;
            e.preventDefault();
            onSort(col, col === sortKey ? !desc : false);
          },
        },
        col.replaceAll("_", " "),
      ),
    ),
  );
  const body = sorted.map(({ row, flags }) =>
    h(
      "tr",
      { class: flags.length ? "flagged" : null, dataset: { index: row.index } },
      columns.map((col) =>
        typeof row[col] === "number"
          ? h("td", { class: "num", title: String(row[col]) }, fmtNum(row[col]))
          : h("td", null, fmt(row[col])),
      ),
      h("td", { class: "flags" }, flags.join(", ")),
    ),
  );
  const table = h(
    "table",
    { class: "data filters-table", dataset: { rows: rows.length, flagged: flagsOf.size } },
    h("thead", null, head),
    h("tbody", null, body),
  );
  return table;
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const page = await openPage(el, ctx, {
    kind: "health",
    from: "any",
    empty: "has health scalars but no health records per layer.",
  });
  if (!page) return null;
  const { tags, names: layers, name: layer, steps } = page;
  let step = page.step;
  setState({ layer, step });

  const overview = h("tbody");
  const detail = h("div", { class: "health-detail" });
  const trends = new Map();
  // One column per score, the same for every row, so labels and sparklines line up.
  const scores = scoreColumns(tags, layers);

  async function fillRow(row, name) {
    const verdictCell = row.querySelector(".verdict-cell");
    const trendCell = row.querySelector(".trend-cell");
    if (tags.json[name]) {
      try {
        const rec = await recordAt(run, tags.json[name], step);
        setChildren(verdictCell, rec ? badge(rec.payload) : "–");
      } catch (e) {
        setChildren(verdictCell, "–");
      }
    }
    const scalarTags = tags.scalars[name] || [];
    if (!scalarTags.length) {
      setChildren(trendCell, h("span", { class: "muted" }, "no scalars"));
      return;
    }
    if (!trends.has(name)) trends.set(name, api("scalars", { run, tag: scalarTags }));
    try {
      const { series } = await trends.get(name);
      const byScore = new Map(series.map((s) => [scoreName(s.tag, name), s]));
      setChildren(
        trendCell,
        h(
          "div",
          { class: "health-trends" },
          scores.map((score) => {
            const label = h("span", { class: "trend-name" }, score.replaceAll("_", " "));
            const s = byScore.get(score);
            if (!s) {
              return h(
                "span",
                {
                  class: "health-trend missing",
                  dataset: { score },
                  title: `${score}: not measured`,
                },
                label,
                h("span", { class: "trend-gap" }),
                h("span", { class: "trend-none" }, "–"),
              );
            }
            const i = s.steps.indexOf(nearestStep(s.steps, step));
            return h(
              "span",
              { class: "health-trend", title: s.tag, dataset: { score } },
              label,
              sparkline(s.steps, s.values, { current: s.steps[i], width: 110, height: 28 }),
              h("span", { class: "trend-value", title: String(s.values[i]) }, fmtNum(s.values[i])),
            );
          }),
        ),
      );
    } catch (e) {
      setChildren(trendCell, h("span", { class: "muted" }, e.message));
    }
  }

  function renderOverview() {
    setChildren(
      overview,
      layers.map((name) => {
        const row = h(
          "tr",
          {
            class: name === layer ? "selected" : null,
            dataset: { layer: name },
            onclick: () => ctx.go({ layer: name }),
          },
          h("th", { scope: "row" }, h("button", { type: "button", class: "link" }, name)),
          h("td", { class: "verdict-cell" }, "…"),
          h("td", { class: "trend-cell" }, "…"),
        );
        fillRow(row, name);
        return row;
      }),
    );
  }

  async function renderDetail() {
    const parts = [h("h3", null, `Layer ${layer}`)];
    const grid = imagePanel(ctx, { maxWidth: 360, alt: `${layer} filters, flagged ones outlined` });
    if (tags.images[layer]) {
      const s = await stepAt(run, tags.images[layer], step);
      grid.show(imageUrl(run, tags.images[layer], s, 0), `Flagged filters outlined (epoch ${s})`);
    }
    let table = notice("No per-filter scores for this layer.");
    if (tags.json[layer]) {
      const rec = await recordAt(run, tags.json[layer], step);
      if (rec) {
        const p = rec.payload;
        parts.push(
          h("p", null, "Verdict: ", badge(p), h("span", { class: "muted" }, ` (epoch ${rec.step})`)),
          h(
            "dl",
            { class: "evidence" },
            Object.entries(p.evidence || {}).map(([k, v]) => [
              h("dt", null, k.replaceAll("_", " ")),
              h(
                "dd",
                { title: typeof v === "number" ? String(v) : null },
                typeof v === "object" && v !== null ? JSON.stringify(v) : fmtNum(v),
              ),
            ]),
          ),
        );
        table = filterTable(p, (col, desc) => {
          setState({ sort: col, desc: desc ? 1 : 0 });
          renderDetail().then(() => {
            const th = detail.querySelector(`th[data-col="${CSS.escape(col)}"]`);
            if (th) th.focus({ preventScroll: true });
          });
        });
      }
    }
    if (!ctx.alive()) return;
    setChildren(
      detail,
      parts,
      h("div", { class: "row" }, grid.el, h("div", { class: "table-wrap" }, table)),
    );
    el.dataset.rows = table.dataset.rows || "0";
    el.dataset.flagged = table.dataset.flagged || "0";
  }

  const play = page.stepper((s) => {
    step = s;
    renderOverview();
    renderDetail().catch((e) => setChildren(detail, notice(e.message, "error")));
  });
  el.append(
    h(
      "p",
      { class: "lead" },
      "Is each layer learning? Verdicts and scores per epoch; flagged filters (dead, noisy, " +
        "not changing) are highlighted. Layers the fit does not train are marked frozen. " +
        "Click a layer for its filters.",
    ),
    h("div", { class: "controls" }, play.el),
    h(
      "table",
      { class: "data overview" },
      h("thead", null, h("tr", null, h("th", null, "layer"), h("th", null, "verdict"), h("th", null, "trend over epochs"))),
      overview,
    ),
    detail,
  );
  el.dataset.layer = layer;
  el.dataset.layers = String(layers.length);
  renderOverview();
  await renderDetail();
  return () => play.stop();
}
