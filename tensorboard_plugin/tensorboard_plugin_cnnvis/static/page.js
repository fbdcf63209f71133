// What every page of the cnnvis dashboard shares: the opening (the records of a kind, the layer
// or method picked from the URL hash, its steps), records at a step, probe images, image panels.

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

/** Marks the page `el` as having nothing to show, and says why. */
export function showEmpty(el, ...children) {
  el.dataset.state = "empty";
  el.append(...children);
}

// Which names a page offers and which tag it steps through: names with an image record, with a
// JSON record, or with either (then the JSON record's steps, which carry the data).
const SOURCES = {
  images: { names: (tags) => Object.keys(tags.images), tag: (tags, name) => tags.images[name] },
  json: { names: (tags) => Object.keys(tags.json), tag: (tags, name) => tags.json[name] },
  any: {
    names: (tags) => [...new Set([...Object.keys(tags.json), ...Object.keys(tags.images)])],
    tag: (tags, name) => tags.json[name] || tags.images[name],
  },
};

/**
 * The run's last Network overview (json/network/overview: every layer in the model's execution
 * order, with its output shape), or null when the run has none or it cannot be read.
 */
export async function networkOverview(run, kinds) {
  if (!kinds.includes("network")) return null;
  try {
    const tag = (await api("tags", { run, kind: "network" })).json.overview;
    if (!tag) return null;
    const { steps } = await api("steps", { run, tag });
    return steps.length ? await api("data", { run, tag, step: steps[steps.length - 1] }) : null;
  } catch (e) {
    return null;
  }
}

/**
 * Layer names in the order the model computes them, when the run's Network overview lists
 * them; names it does not list (and all of them without an overview) follow in natural order
 * ("conv9" before "conv10"). No other record says where a layer sits in the model.
 */
export async function modelOrder(run, kinds, names) {
  const overview = await networkOverview(run, kinds);
  const index = new Map((overview?.layers || []).map((l, i) => [l.path, i]));
  const known = names.filter((n) => index.has(n)).sort((a, b) => index.get(a) - index.get(b));
  return [...known, ...naturalSort(names.filter((n) => !index.has(n)))];
}

/**
 * Opens a page on the records of `kind` in `ctx.run`: lists their tags, picks the name (a layer
 * or method) kept in the hash under `key`, and reads the steps of its tag.
 *
 * Resolves to null when the page was left meanwhile, or when no name has records (then `el`
 * says "The run “<run>” <empty>"). Otherwise to {tags, names, name, tag, steps, counts, step,
 * picker(label, id), stepper(onChange, options)}: `names` in natural order (layers: in model
 * order, see modelOrder), `step` the hash's step or the last logged one before it, `picker` a
 * <select> that reopens the page on another name, `stepper` the step slider (util.stepper)
 * starting at `step` and keeping it in the hash.
 */
export async function openPage(el, ctx, { kind, empty, from = "images", key = "layer" }) {
  const source = SOURCES[from];
  const tags = await api("tags", { run: ctx.run, kind });
  if (!ctx.alive()) return null;
  const found = source.names(tags);
  const names =
    key === "layer" ? await modelOrder(ctx.run, ctx.kinds || [], found) : naturalSort(found);
  if (!ctx.alive()) return null;
  if (!names.length) {
    showEmpty(el, notice(`The run “${ctx.run}” ${empty}`));
    return null;
  }
  const name = pick(names, getState(key));
  const tag = source.tag(tags, name);
  const { steps, counts } = await api("steps", { run: ctx.run, tag });
  if (!ctx.alive()) return null;
  const step = nearestStep(steps, getState("step"));
  return {
    tags,
    names,
    name,
    tag,
    steps,
    counts,
    step,
    picker: (label = "Layer", id = "cnnvis-layer") =>
      select(label, names, name, (value) => ctx.go({ [key]: value }), { id }),
    stepper: (onChange, options) =>
      stepper(
        steps,
        step,
        (s) => {
          setState({ step: s });
          onChange(s);
        },
        options,
      ),
  };
}

// Records at a step -------------------------------------------------------------------------

/** The step of `tag` to show for `step`: the same, else the last one before (null if none). */
export async function stepAt(run, tag, step) {
  const { steps } = await api("steps", { run, tag });
  return nearestStep(steps, step);
}

/** The JSON record of `tag` at `step`, else the last one before: {step, payload} or null. */
export async function recordAt(run, tag, step) {
  const s = await stepAt(run, tag, step);
  return s === null ? null : { step: s, payload: await api("data", { run, tag, step: s }) };
}

/** Writes `describe(payload)` of `tag`'s record at `step` into `el` (nothing on failure). */
export async function describeRecord(el, ctx, tag, step, describe) {
  if (!tag) return;
  try {
    const record = await recordAt(ctx.run, tag, step);
    if (ctx.alive()) el.textContent = record ? describe(record.payload) : "";
  } catch (e) {
    el.textContent = "";
  }
}

// Images ------------------------------------------------------------------------------------

/**
 * A <figure> with a caption and one crisp image (class "cnnvis-image"). Later calls of
 * `show(url, caption)` swap the image in only once it is decoded, so playback does not
 * flicker, and an answer that arrives late never replaces a newer image. `wrap(img)` may put
 * the image into a container. Returns {el, show(url, caption, alt) -> Promise, clear(...)}.
 */
export function imagePanel(ctx, { maxWidth, alt = "", onload, wrap = (img) => img }) {
  const el = h("figure", { class: "panel" });
  let img = null;
  let latest = null;
  async function show(url, caption, imgAlt = alt) {
    latest = url;
    if (!img) {
      img = crispImage(url, { maxWidth, alt: imgAlt, onload });
      img.classList.add("cnnvis-image");
      setChildren(el, h("figcaption", null, caption), wrap(img));
      return;
    }
    try {
      await loadImage(url);
    } catch (e) {
      return;
    }
    if (!ctx.alive() || latest !== url || !img) return;
    img.src = url;
    img.alt = imgAlt;
    el.querySelector("figcaption").textContent = caption;
  }
  function clear(...children) {
    img = null;
    latest = null;
    setChildren(el, children);
  }
  return { el, show, clear };
}

/** Starts loading the image of the step after `step` (`urlFor` may say null: none). */
export function preloadNext(steps, step, urlFor) {
  const next = steps[steps.indexOf(step) + 1];
  const url = next === undefined ? null : urlFor(next);
  if (url) loadImage(url).catch(() => {});
}

// Probe images --------------------------------------------------------------------------------

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

/** A thumbnail of probe `index` at `step`, or null when it was not logged. */
export function probeThumb(run, probes, index, step) {
  const url = probeUrl(run, probes, index, step);
  return url ? h("img", { src: url, alt: `probe ${index}`, class: "thumb" }) : null;
}

/** One button per probe showing `thumb(i)` (or "#i"); a click reopens the page on that probe. */
export function probePicker(ctx, count, current, thumb) {
  return h(
    "div",
    { class: "probe-picker", role: "group", "aria-label": "Probe image" },
    [...Array(count).keys()].map((i) =>
      h(
        "button",
        {
          type: "button",
          class: i === current ? "probe-button current" : "probe-button",
          title: `probe ${i}`,
          dataset: { probe: i },
          onclick: () => ctx.go({ probe: i }),
        },
        thumb(i) || `#${i}`,
      ),
    ),
  );
}
