// Activations page: the feature-map grid of one layer for one probe image, at a chosen epoch and
// as a filmstrip over all epochs (image tags activations/<layer>, probes/images).

import {
  describeRecord,
  imagePanel,
  openPage,
  preloadNext,
  probeImages,
  probePicker,
  probeThumb,
  probeUrl,
} from "./page.js";
import {
  control,
  crispImage,
  filmstrip,
  getState,
  h,
  imageUrl,
  notice,
  pick,
  setChildren,
  setState,
} from "./util.js";

function describe(p) {
  const order = p.order === "mean" ? "strongest first" : "by index";
  return `${p.n_channels} channels; showing ${p.channels.length} (${order}): ${p.channels.join(", ")}`;
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const page = await openPage(el, ctx, {
    kind: "activations",
    empty: "has activation metadata but no activation images.",
  });
  if (!page) return null;
  const probes = await probeImages(run, ctx.kinds);
  if (!ctx.alive()) return null;
  const { name: layer, tag, steps, counts } = page;
  let step = page.step;
  const nProbes = Math.max(...counts);
  const probe = Number(pick([...Array(nProbes).keys()], getState("probe"), 0));
  setState({ layer, step, probe });

  const probeBox = h("figure", { class: "panel probe" });
  const grid = imagePanel(ctx, { maxWidth: 560, alt: `${layer} activations` });
  const meta = h("p", { class: "meta" });

  function available(s) {
    return counts[steps.indexOf(s)] > probe;
  }

  function show(s) {
    step = s;
    strip.setCurrent(s);
    const pu = probeUrl(run, probes, probe, s);
    if (pu && pu !== probeBox.dataset.url) {
      probeBox.dataset.url = pu;
      const img = crispImage(pu, { maxWidth: 160, alt: `probe ${probe}` });
      setChildren(probeBox, h("figcaption", null, `Probe ${probe}`), img);
    }
    if (!available(s)) {
      grid.clear(notice(`No activation grid for probe ${probe} at epoch ${s}.`));
      return;
    }
    grid.show(imageUrl(run, tag, s, probe), `${layer}, epoch ${s}`);
    preloadNext(steps, s, (next) => (available(next) ? imageUrl(run, tag, next, probe) : null));
    describeRecord(meta, ctx, page.tags.json[layer], s, describe);
  }

  const strip = filmstrip(
    steps.filter(available),
    (s) => imageUrl(run, tag, s, probe),
    step,
    (s) => play.set(s),
  );
  const play = page.stepper(show);

  const picker = probePicker(ctx, nProbes, probe, (i) => probeThumb(run, probes, i, step));
  el.append(
    h("p", { class: "lead" }, "What the layer responds to in each probe image: one tile per channel."),
    h("div", { class: "controls" }, page.picker(), control("Probe", picker, "div")),
    h("div", { class: "controls" }, play.el),
    meta,
    h("div", { class: "row" }, probeBox, grid.el),
    h("h3", null, "Over epochs"),
    strip.el,
  );
  el.dataset.layer = layer;
  el.dataset.probes = String(nProbes);
  el.dataset.steps = String(steps.length);
  show(step);
  return () => {
    play.stop();
    strip.disconnect();
  };
}
