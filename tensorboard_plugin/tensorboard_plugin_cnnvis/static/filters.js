// Filters page: the filter grid of one layer over training, with a step slider, playback and a
// side-by-side comparison of two steps (image tags filters/<layer>, JSON json/filters/<layer>).

import {
  api,
  crispImage,
  getState,
  h,
  imageUrl,
  loadImage,
  naturalSort,
  nearestStep,
  notice,
  pick,
  select,
  setChildren,
  setState,
  stepper,
} from "./util.js";

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
  const tags = await api("tags", { run, kind: "filters" });
  const layers = naturalSort(Object.keys(tags.images));
  if (!ctx.alive()) return null;
  if (!layers.length) {
    el.dataset.state = "empty";
    el.append(notice(`The run “${run}” has filter metadata but no filter grid images.`));
    return null;
  }
  const layer = pick(layers, getState("layer"));
  const tag = tags.images[layer];
  const { steps } = await api("steps", { run, tag });
  if (!ctx.alive()) return null;
  const first = nearestStep(steps, getState("step"));
  const cmpWanted = getState("cmp");
  const compareOff = cmpWanted === "off";
  let compare = compareOff ? null : pick(steps, cmpWanted, steps[0]);
  setState({ layer, step: first, cmp: compareOff ? "off" : compare });

  const meta = h("p", { class: "meta" });
  const panelA = h("figure", { class: "panel" });
  const panelB = h("figure", { class: "panel" });
  const panels = h("div", { class: "compare" }, panelA, panelB);

  function showPanel(panel, step, label) {
    const url = imageUrl(run, tag, step, 0);
    const alt = `${layer} filters at epoch ${step}`;
    const caption = `${label}: epoch ${step}`;
    const img = panel.querySelector("img");
    if (!img) {
      const fresh = crispImage(url, { maxWidth: 440, alt });
      fresh.classList.add("cnnvis-image");
      setChildren(panel, h("figcaption", null, caption), fresh);
      return;
    }
    // Swap only once the new image is decoded, so playback does not flicker.
    loadImage(url)
      .then(() => {
        if (!ctx.alive()) return;
        img.src = url;
        img.alt = alt;
        panel.querySelector("figcaption").textContent = caption;
      })
      .catch(() => {});
  }

  async function showMeta(step) {
    if (!tags.json[layer]) return;
    try {
      const info = await api("steps", { run, tag: tags.json[layer] });
      const s = nearestStep(info.steps, step);
      const payload = await api("data", { run, tag: tags.json[layer], step: s });
      if (ctx.alive()) meta.textContent = describe(payload);
    } catch (e) {
      meta.textContent = "";
    }
  }

  function showStep(step) {
    setState({ step });
    showPanel(panelA, step, "Selected");
    const next = steps[steps.indexOf(step) + 1];
    if (next !== undefined) loadImage(imageUrl(run, tag, next, 0)).catch(() => {});
    showMeta(step);
  }

  function showCompare() {
    panelB.hidden = compare === null;
    if (compare !== null) showPanel(panelB, compare, "Compare");
    el.dataset.images = String(compare === null ? 1 : 2);
  }

  const play = stepper(steps, first, showStep);
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
  const layerSelect = select(
    "Layer",
    layers,
    layer,
    (value) => {
      setState({ layer: value });
      ctx.refresh();
    },
    { id: "cnnvis-layer" },
  );
  el.append(
    h("p", { class: "lead" }, "How the layer's filters change during training. First-layer filters should turn from noise into edges and colour blobs."),
    h("div", { class: "controls" }, layerSelect, play.el, cmpSelect),
    meta,
    panels,
  );
  el.dataset.layer = layer;
  el.dataset.steps = String(steps.length);
  showStep(first);
  showCompare();
  el.dataset.state = "ready";
  return () => play.stop();
}
