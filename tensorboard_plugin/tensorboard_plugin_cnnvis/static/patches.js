// Patches page: the dataset patches that activate each channel of a layer most, one row per
// channel, at a chosen epoch and over epochs (image tags patches/<layer>, json/patches/<layer>).

import {
  api,
  crispImage,
  filmstrip,
  fmt,
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

/** Positions one label per grid row next to the image, using the payload's grid geometry. */
function placeRowLabels(labels, img, payload) {
  const grid = payload.grid || {};
  const rows = grid.rows || labels.children.length;
  if (!rows || !img.naturalHeight) return;
  const pad = (grid.pad ?? 1) * (grid.scale ?? 1);
  const zoom = img.getBoundingClientRect().height / img.naturalHeight || 1;
  const pitch = (img.naturalHeight - pad) / rows;
  labels.style.height = `${img.naturalHeight * zoom}px`;
  [...labels.children].forEach((label, r) => {
    label.style.top = `${(pad + r * pitch) * zoom}px`;
    label.style.height = `${(pitch - pad) * zoom}px`;
  });
}

function valuesTable(payload) {
  const channels = payload.channels || [];
  const rows = channels.map((c, r) =>
    h(
      "tr",
      null,
      h("th", { scope: "row" }, String(c)),
      h("td", { class: "num" }, (payload.values?.[r] || []).map((v) => h("span", { class: "value" }, fmt(v)))),
      h("td", { class: "num muted" }, (payload.indices?.[r] || []).join(", ")),
    ),
  );
  return h(
    "table",
    { class: "data", dataset: { rows: rows.length } },
    h(
      "thead",
      null,
      h("tr", null, h("th", null, "channel"), h("th", null, `top-${payload.k} activations`), h("th", null, "dataset images")),
    ),
    h("tbody", null, rows),
  );
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const tags = await api("tags", { run, kind: "patches" });
  const layers = naturalSort(Object.keys(tags.images));
  if (!ctx.alive()) return null;
  if (!layers.length) {
    el.dataset.state = "empty";
    el.append(notice(`The run “${run}” has patch metadata but no patch images.`));
    return null;
  }
  const layer = pick(layers, getState("layer"));
  const tag = tags.images[layer];
  const { steps } = await api("steps", { run, tag });
  if (!ctx.alive()) return null;
  let step = nearestStep(steps, getState("step"));
  setState({ layer, step });

  const labels = h("div", { class: "row-labels" });
  const figure = h("figure", { class: "panel" });
  const side = h("div", { class: "table-wrap" });
  const meta = h("p", { class: "meta" });
  let img = null;
  let payload = null;

  async function show(s) {
    step = s;
    setState({ step: s });
    strip.setCurrent(s);
    const url = imageUrl(run, tag, s, 0);
    if (img) {
      await loadImage(url).catch(() => {});
      if (!ctx.alive() || step !== s) return;
      img.src = url;
      figure.querySelector("figcaption").textContent = `${layer}, epoch ${s}`;
    } else {
      img = crispImage(url, {
        maxWidth: 420,
        alt: `${layer} top patches`,
        onload: (im) => payload && placeRowLabels(labels, im, payload),
      });
      img.classList.add("cnnvis-image");
      setChildren(
        figure,
        h("figcaption", null, `${layer}, epoch ${s}`),
        h("div", { class: "labelled-grid" }, labels, img),
      );
    }
    const next = steps[steps.indexOf(s) + 1];
    if (next !== undefined) loadImage(imageUrl(run, tag, next, 0)).catch(() => {});
    if (!tags.json[layer]) return;
    const jsteps = (await api("steps", { run, tag: tags.json[layer] })).steps;
    payload = await api("data", { run, tag: tags.json[layer], step: nearestStep(jsteps, s) });
    if (!ctx.alive() || step !== s) return;
    setChildren(labels, (payload.channels || []).map((c) => h("span", { class: "row-label" }, `ch ${c}`)));
    if (img.complete) placeRowLabels(labels, img, payload);
    const rf = payload.receptive_field || {};
    meta.textContent =
      `Each row is one channel, best patch first. Receptive field ${rf.size ?? "?"} px ` +
      `(jump ${rf.jump ?? "?"}, start ${rf.start ?? "?"}).`;
    setChildren(side, valuesTable(payload));
    el.dataset.rows = String((payload.channels || []).length);
  }

  const strip = filmstrip(steps, (s) => imageUrl(run, tag, s, 0), step, (s) => play.set(s));
  const play = stepper(steps, step, (s) => show(s).catch(() => {}));
  el.append(
    h("p", { class: "lead" }, "Dataset patches that excite each channel most (Zeiler & Fergus): what each unit has learned to detect."),
    h(
      "div",
      { class: "controls" },
      select("Layer", layers, layer, (v) => {
        setState({ layer: v });
        ctx.refresh();
      }, { id: "cnnvis-layer" }),
      play.el,
    ),
    meta,
    h("div", { class: "row" }, figure, side),
    h("h3", null, "Over epochs"),
    strip.el,
  );
  el.dataset.layer = layer;
  el.dataset.steps = String(steps.length);
  await show(step);
  el.dataset.state = "ready";
  return () => {
    play.stop();
    strip.disconnect();
  };
}
