// Attribution page: a probe-image x epoch matrix for one method; each cell draws the probe image
// and overlays the raw map (json/attribution/<method>) through a colormap with adjustable opacity.
// With faithfulness scores, a table ranks the methods against random maps, the method's deletion
// and insertion curves are drawn, and rows under the matrix give its scores at each epoch.

import { COLORMAPS, colormapLut, mapCanvas } from "./charts.js";
import {
  comparisonTable,
  curvesFigure,
  explanation,
  footerRows,
  loadFaithfulness,
  probeScores,
} from "./faithfulness.js";
import { openPage, probeImages, probeThumb, probeUrl } from "./page.js";
import {
  api,
  control,
  getState,
  h,
  imageUrl,
  lazy,
  loadImage,
  notice,
  pick,
  segmented,
  select,
  setChildren,
  setState,
  spacedSteps,
} from "./util.js";

const CELL = 96;
const SPACED = 12;
const ZERO_NOTE =
  "This map is zero everywhere: the method found no evidence it keeps. Grad-CAM keeps " +
  "only positive gradient-weighted sums of the layer's channels (a ReLU), so a class " +
  "whose evidence weighs negatively there leaves it blank; LayerCAM and the gradient " +
  "methods may still show where the model looks.";

/** Whether a stored map is all zero (e.g. Grad-CAM when no channel weighs positively). */
function isZeroMap(map) {
  return Array.isArray(map) && map.length > 0 && map.every((v) => v === 0);
}

function drawCell(canvas, probeImg, map, size, alpha, cmap) {
  const g = canvas.getContext("2d");
  const { width, height } = canvas;
  g.globalAlpha = 1;
  g.fillStyle = "#1d1d1d";
  g.fillRect(0, 0, width, height);
  if (probeImg) {
    g.imageSmoothingEnabled = true;
    g.drawImage(probeImg, 0, 0, width, height);
  }
  if (map && Array.isArray(size) && map.length === size[0] * size[1]) {
    g.imageSmoothingEnabled = true;
    g.globalAlpha = probeImg ? alpha : 1;
    g.drawImage(mapCanvas(map, size[0], size[1], cmap), 0, 0, width, height);
    g.globalAlpha = 1;
  }
}

function colorbar(cmap) {
  const canvas = h("canvas", { width: 128, height: 10, class: "colorbar" });
  const g = canvas.getContext("2d");
  const lut = colormapLut(cmap);
  for (let x = 0; x < 128; x++) {
    const k = Math.round((x / 127) * 255) * 3;
    g.fillStyle = `rgb(${lut[k]},${lut[k + 1]},${lut[k + 2]})`;
    g.fillRect(x, 0, 1, 10);
  }
  return h("span", { class: "legend" }, "low ", canvas, " high");
}

const known = (v) => v !== undefined && v !== null;

/** A class as the record's `class_names` call it, else its number (null: not given). */
export function className(c, names) {
  if (!known(c)) return null;
  return Array.isArray(names) && known(names[c]) ? String(names[c]) : String(c);
}

/** Hover text of a probe: its label, the prediction, the class explained (when another), score. */
function probeTitle(info, names) {
  if (!info) return "";
  const parts = [];
  if (known(info.label)) parts.push(`label: ${className(info.label, names)}`);
  if (known(info.prediction)) parts.push(`predicted: ${className(info.prediction, names)}`);
  if (known(info.class) && String(info.class) !== String(info.label))
    parts.push(`explained: ${className(info.class, names)}`);
  if (Number.isFinite(info.score)) parts.push(`score: ${info.score.toFixed(3)}`);
  return parts.join(" · ");
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const page = await openPage(el, ctx, {
    kind: "attribution",
    from: "any",
    key: "method",
    empty: "has no attribution maps.",
  });
  if (!page) return null;
  const probes = await probeImages(run, ctx.kinds);
  if (!ctx.alive()) return null;
  const { names: methods, name: method, steps: allSteps } = page;
  let alpha = Math.min(Math.max(Number(getState("alpha", "0.5")), 0), 1);
  if (Number.isNaN(alpha)) alpha = 0.5;
  let cmap = pick(COLORMAPS, getState("cmap"), "inferno");
  const jsonTag = page.tags.json[method];
  const imageTag = page.tags.images[method];
  const cols = allSteps.length > SPACED ? pick(["spaced", "all"], getState("cols"), "spaced") : "all";
  const steps = cols === "spaced" ? spacedSteps(allSteps, SPACED) : allSteps;
  let nProbes = Math.max(...page.counts);
  let lastPayload = null;
  if (jsonTag) {
    lastPayload = await api("data", { run, tag: jsonTag, step: steps[steps.length - 1] });
    nProbes = (lastPayload.maps || []).length;
  }
  let faith = { methods: [], random: null };
  try {
    faith = await loadFaithfulness(run, page.tags.json);
  } catch (e) {
    faith = { methods: [], random: null, error: e.message };
  }
  if (!ctx.alive()) return null;
  setState({ method, alpha, cmap, cols: allSteps.length > SPACED ? cols : null });

  const watcher = lazy();
  const drawn = [];
  let failed = 0;
  let zeros = 0;

  async function fillCell(cell, i, s) {
    try {
      if (!jsonTag) {
        const img = await loadImage(imageUrl(run, imageTag, s, i));
        img.classList.add("overlay-img");
        cell.firstChild.append(img.cloneNode());
        drawn.push(null);
      } else {
        const payload = await api("data", { run, tag: jsonTag, step: s });
        const url = probeUrl(run, probes, i, s);
        const probeImg = url ? await loadImage(url) : null;
        const canvas = h("canvas", { width: CELL, height: CELL, class: "cell-canvas" });
        const record = { canvas, probeImg, map: payload.maps?.[i], size: payload.size };
        drawCell(canvas, probeImg, record.map, record.size, alpha, cmap);
        const p = payload.probes?.[i];
        const title = probeTitle(p, payload.class_names);
        const zero = isZeroMap(record.map);
        const note = zero ? ZERO_NOTE : null;
        const scores = probeScores(payload.faithfulness, i);
        cell.title = [title, scores, note].filter(Boolean).join("\n");
        if (p && p.label !== undefined && p.prediction !== undefined && p.prediction !== null) {
          cell.classList.add(String(p.label) === String(p.prediction) ? "right" : "wrong");
        }
        cell.firstChild.append(canvas);
        if (zero) {
          cell.classList.add("zero-map");
          cell.firstChild.append(h("span", { class: "zero-badge" }, "all 0"));
          zeros += 1;
        }
        drawn.push(record);
      }
    } catch (e) {
      failed += 1;
      cell.firstChild.append(h("span", { class: "muted" }, "–"));
    }
    if (ctx.alive()) {
      el.dataset.drawn = String(drawn.length);
      el.dataset.failed = String(failed);
      el.dataset.zero = String(zeros);
    }
  }

  function redraw() {
    for (const r of drawn) if (r) drawCell(r.canvas, r.probeImg, r.map, r.size, alpha, cmap);
    setChildrenLegend();
  }

  const head = h(
    "tr",
    null,
    h("th", { class: "corner" }, "probe \\ epoch"),
    steps.map((s) => h("th", { scope: "col" }, String(s))),
  );
  const body = [...Array(nProbes).keys()].map((i) => {
    const p = lastPayload?.probes?.[i];
    return h(
      "tr",
      null,
      h(
        "th",
        { scope: "row", class: "probe-head" },
        probeThumb(run, probes, i, steps[steps.length - 1]),
        h(
          "span",
          { class: "probe-label" },
          className(p?.label, lastPayload?.class_names) ?? `#${i}`,
        ),
      ),
      steps.map((s) => {
        const cell = h("td", { class: "cell", dataset: { probe: i, step: s } }, h("div", { class: "cell-box" }));
        watcher.watch(cell, () => fillCell(cell, i, s));
        return cell;
      }),
    );
  });

  const legendBox = h("span");
  function setChildrenLegend() {
    legendBox.replaceChildren(jsonTag ? colorbar(cmap) : "");
  }
  const opacity = h("input", {
    type: "range",
    min: 0,
    max: 1,
    step: 0.05,
    value: alpha,
    id: "cnnvis-alpha",
    disabled: !jsonTag,
    oninput: () => {
      alpha = Number(opacity.value);
      setState({ alpha });
      redraw();
    },
  });
  const controls = h(
    "div",
    { class: "controls" },
    segmented("Method", methods, method, (m) => ctx.go({ method: m }), {
      key: "method",
      text: (m) => m.replaceAll("_", "-"),
    }),
    control("Overlay opacity", opacity),
    select("Colormap", COLORMAPS, cmap, (v) => {
      cmap = v;
      setState({ cmap });
      redraw();
    }, { id: "cnnvis-cmap", disabled: !jsonTag }),
    legendBox,
    allSteps.length > SPACED
      ? select(
          "Epochs",
          [
            ["spaced", `${SPACED} of ${allSteps.length}, evenly spaced`],
            ["all", `all ${allSteps.length}`],
          ],
          cols,
          (v) => ctx.go({ cols: v }),
          { id: "cnnvis-cols" },
        )
      : "",
  );
  setChildrenLegend();
  const layerNote = lastPayload?.layer ? ` (computed at layer ${lastPayload.layer})` : "";
  const own = faith.methods.find((m) => m.name === method) || null;
  const curves = h("div", { class: "faith-curves-box" });
  async function showCurves(step) {
    try {
      const payload = await api("data", { run, tag: jsonTag, step });
      if (!ctx.alive() || !payload.faithfulness) return;
      setChildren(curves, curvesFigure(method, payload.faithfulness, step));
      for (const td of el.querySelectorAll("td.faith-cell")) {
        td.classList.toggle("current", Number(td.dataset.step) === step);
      }
    } catch (e) {
      setChildren(curves, h("span", { class: "muted" }, e.message));
    }
  }
  const foot = own ? h("tfoot", null, footerRows(steps, own, faith.random, showCurves)) : "";
  let panel = "";
  if (faith.methods.length) {
    panel = h(
      "section",
      { class: "faith" },
      h("h3", null, "Faithfulness"),
      h("p", { class: "lead" }, explanation(own ? own.entry : faith.methods[0].entry, nProbes)),
      h(
        "div",
        { class: "faith-row-box" },
        h("div", { class: "table-wrap" }, comparisonTable(faith, method, (m) => ctx.go({ method: m }))),
        own
          ? curves
          : h(
              "p",
              { class: "muted faith-missing" },
              `No faithfulness scores were logged for ${method}: pass faithfulness=True to its ` +
                'callback (CNNVisCallback: options={"<monitor>": {"faithfulness": True}}).',
            ),
      ),
    );
  } else {
    panel = h(
      "p",
      { class: "muted faith-none" },
      faith.error
        ? `Could not read the faithfulness scores: ${faith.error}`
        : "No faithfulness scores in this run: pass faithfulness=True to an attribution " +
            "callback (CNNVisCallback scores Grad-CAM and LayerCAM by default).",
    );
  }
  el.append(
    h(
      "p",
      { class: "lead" },
      `Where the model looks: ${method.replaceAll("_", "-")} maps${layerNote} for each probe ` +
        "image (rows) at each logged epoch (columns). Green frame: correct prediction, red: wrong. " +
        "Hover a cell for label and prediction.",
    ),
    controls,
    jsonTag ? "" : notice("Only pre-rendered overlays were logged for this method; opacity and colormap need json/attribution records.", "info"),
    panel,
    h("div", { class: "matrix-wrap" }, h("table", { class: "matrix" }, h("thead", null, head), h("tbody", null, body), foot)),
  );
  if (own) await showCurves(own.step);
  el.dataset.method = method;
  el.dataset.probes = String(nProbes);
  el.dataset.steps = String(steps.length);
  el.dataset.drawn = "0";
  el.dataset.faithMethods = String(faith.methods.length);
  return () => watcher.disconnect();
}
