// Activations page: the feature-map grid of one layer for one probe image, at a chosen epoch and
// as a filmstrip over all epochs (image tags activations/<layer>, probes/images).

import {
  api,
  crispImage,
  filmstrip,
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

/** Finds the probe images logged with the run: {tag, steps, counts} or null. */
export async function probeImages(run, kinds) {
  if (!kinds.includes("probes")) return null;
  const tags = await api("tags", { run, kind: "probes" });
  const tag = tags.images.images;
  if (!tag) return null;
  const info = await api("steps", { run, tag });
  return { tag, steps: info.steps, counts: info.counts };
}

/** URL of probe `index` as logged at or before `step` (or the first logged), or null. */
export function probeUrl(run, probes, index, step) {
  if (!probes || !probes.steps.length) return null;
  const s = nearestStep(probes.steps, step);
  const at = probes.steps.indexOf(s);
  const i = at >= 0 && index < probes.counts[at] ? at : probes.counts.findIndex((c) => index < c);
  return i < 0 ? null : imageUrl(run, probes.tag, probes.steps[i], index);
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const tags = await api("tags", { run, kind: "activations" });
  const layers = naturalSort(Object.keys(tags.images));
  if (!ctx.alive()) return null;
  if (!layers.length) {
    el.dataset.state = "empty";
    el.append(notice(`The run “${run}” has activation metadata but no activation images.`));
    return null;
  }
  const layer = pick(layers, getState("layer"));
  const tag = tags.images[layer];
  const [info, probes] = await Promise.all([api("steps", { run, tag }), probeImages(run, ctx.kinds)]);
  if (!ctx.alive()) return null;
  const { steps, counts } = info;
  let step = nearestStep(steps, getState("step"));
  const nProbes = Math.max(...counts);
  const probe = Number(pick([...Array(nProbes).keys()], getState("probe"), 0));
  setState({ layer, step, probe });

  const probeBox = h("figure", { class: "panel probe" });
  const gridBox = h("figure", { class: "panel" });
  const meta = h("p", { class: "meta" });
  let gridImg = null;

  function available(s) {
    return counts[steps.indexOf(s)] > probe;
  }

  async function showMeta(s) {
    if (!tags.json[layer]) return;
    try {
      const jsteps = (await api("steps", { run, tag: tags.json[layer] })).steps;
      const p = await api("data", { run, tag: tags.json[layer], step: nearestStep(jsteps, s) });
      const order = p.order === "mean" ? "strongest first" : "by index";
      if (ctx.alive())
        meta.textContent = `${p.n_channels} channels; showing ${p.channels.length} (${order}): ${p.channels.join(", ")}`;
    } catch (e) {
      meta.textContent = "";
    }
  }

  function show(s) {
    step = s;
    setState({ step: s });
    strip.setCurrent(s);
    const pu = probeUrl(run, probes, probe, s);
    if (pu && pu !== probeBox.dataset.url) {
      probeBox.dataset.url = pu;
      const img = crispImage(pu, { maxWidth: 160, alt: `probe ${probe}` });
      setChildren(probeBox, h("figcaption", null, `Probe ${probe}`), img);
    }
    if (!available(s)) {
      setChildren(gridBox, notice(`No activation grid for probe ${probe} at epoch ${s}.`));
      gridImg = null;
      return;
    }
    const url = imageUrl(run, tag, s, probe);
    const caption = `${layer}, epoch ${s}`;
    if (gridImg) {
      loadImage(url)
        .then(() => {
          if (!ctx.alive()) return;
          gridImg.src = url;
          gridBox.querySelector("figcaption").textContent = caption;
        })
        .catch(() => {});
    } else {
      gridImg = crispImage(url, { maxWidth: 560, alt: `${layer} activations` });
      gridImg.classList.add("cnnvis-image");
      setChildren(gridBox, h("figcaption", null, caption), gridImg);
    }
    const next = steps[steps.indexOf(s) + 1];
    if (next !== undefined && available(next)) loadImage(imageUrl(run, tag, next, probe)).catch(() => {});
    showMeta(s);
  }

  const strip = filmstrip(
    steps.filter(available),
    (s) => imageUrl(run, tag, s, probe),
    step,
    (s) => play.set(s),
  );
  const play = stepper(steps, step, show);

  const probePicker = h(
    "div",
    { class: "probe-picker", role: "group", "aria-label": "Probe image" },
    [...Array(nProbes).keys()].map((i) => {
      const url = probeUrl(run, probes, i, step);
      return h(
        "button",
        {
          type: "button",
          class: i === probe ? "probe-button current" : "probe-button",
          title: `probe ${i}`,
          dataset: { probe: i },
          onclick: () => {
            setState({ probe: i });
            ctx.refresh();
          },
        },
        url ? h("img", { src: url, alt: `probe ${i}`, class: "thumb" }) : `#${i}`,
      );
    }),
  );
  el.append(
    h("p", { class: "lead" }, "What the layer responds to in each probe image: one tile per channel."),
    h(
      "div",
      { class: "controls" },
      select("Layer", layers, layer, (v) => {
        setState({ layer: v });
        ctx.refresh();
      }, { id: "cnnvis-layer" }),
      h("div", { class: "control" }, h("span", null, "Probe"), probePicker),
    ),
    h("div", { class: "controls" }, play.el),
    meta,
    h("div", { class: "row" }, probeBox, gridBox),
    h("h3", null, "Over epochs"),
    strip.el,
  );
  el.dataset.layer = layer;
  el.dataset.probes = String(nProbes);
  el.dataset.steps = String(steps.length);
  show(step);
  el.dataset.state = "ready";
  return () => {
    play.stop();
    strip.disconnect();
  };
}
