// Filters page: the filter grid of one layer over training, with a step slider, playback and a
// side-by-side comparison of two steps (image tags filters/<layer>, JSON json/filters/<layer>).

import { describeRecord, imagePanel, openPage, preloadNext } from "./page.js";
import { getState, h, imageUrl, pick, select, setState } from "./util.js";

function describe(meta) {
  if (!meta) return "";
  const parts = [`${meta.n_filters} filters`];
  if (Array.isArray(meta.kernel_size)) parts.push(`${meta.kernel_size.join("×")} kernels`);
  if (meta.in_channels !== undefined) parts.push(`${meta.in_channels} input channels`);
  if (meta.mode === "rgb") parts.push("shown as RGB");
  else if (Array.isArray(meta.shown_channels))
    parts.push(`showing input channel ${meta.shown_channels.join(", ")}`);
  return parts.join(" · ");
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const page = await openPage(el, ctx, {
    kind: "filters",
    empty: "has filter metadata but no filter grid images.",
  });
  if (!page) return null;
  const { name: layer, tag, steps, step: first } = page;
  const cmpWanted = getState("cmp");
  const compareOff = cmpWanted === "off";
  let compare = compareOff ? null : pick(steps, cmpWanted, steps[0]);
  setState({ layer, step: first, cmp: compareOff ? "off" : compare });

  const meta = h("p", { class: "meta" });
  const panelA = imagePanel(ctx, { maxWidth: 440 });
  const panelB = imagePanel(ctx, { maxWidth: 440 });
  const panels = h("div", { class: "compare" }, panelA.el, panelB.el);

  function showPanel(panel, step, label) {
    panel.show(imageUrl(run, tag, step, 0), `${label}: epoch ${step}`, `${layer} filters at epoch ${step}`);
  }

  function showStep(step) {
    showPanel(panelA, step, "Selected");
    preloadNext(steps, step, (next) => imageUrl(run, tag, next, 0));
    describeRecord(meta, ctx, page.tags.json[layer], step, describe);
  }

  function showCompare() {
    panelB.el.hidden = compare === null;
    if (compare !== null) showPanel(panelB, compare, "Compare");
    el.dataset.images = String(compare === null ? 1 : 2);
  }

  const play = page.stepper(showStep);
  const cmpSelect = select(
    "Compare with",
    [["off", "off"], ...steps.map((s) => [s, `epoch ${s}`])],
    compare === null ? "off" : compare,
    (value) => {
      compare = value === "off" ? null : Number(value);
      setState({ cmp: value });
      showCompare();
    },
    { id: "cnnvis-compare" },
  );
  el.append(
    h("p", { class: "lead" }, "How the layer's filters change during training. First-layer filters should turn from noise into edges and colour blobs."),
    h("div", { class: "controls" }, page.picker(), play.el, cmpSelect),
    meta,
    panels,
  );
  el.dataset.layer = layer;
  el.dataset.steps = String(steps.length);
  showStep(first);
  showCompare();
  return () => play.stop();
}
