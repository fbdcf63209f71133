// Patches page: the dataset patches that activate each channel of a layer most, one row per
// channel, at a chosen epoch and over epochs (image tags patches/<layer>, json/patches/<layer>).

import { imagePanel, networkOverview, openPage, preloadNext, recordAt } from "./page.js";
import { api, filmstrip, fmt, h, imageUrl, numberList, setChildren, setState } from "./util.js";

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

/** "5×5" for [5, 5] (or a lone number), "?" when missing. */
function side(v) {
  if (v === null || v === undefined) return "?";
  return (Array.isArray(v) ? v : [v, v]).map(fmt).join("×");
}

/** "0–7" for consecutive channels, else "0, 3, 7". */
function channelList(channels) {
  const run = channels.length > 2 && channels.every((c, i) => c === channels[0] + i);
  return run ? `${channels[0]}–${channels[channels.length - 1]}` : channels.join(", ");
}

/**
 * How many channels the layer has: the patches record's `n_channels`, else that of the
 * layer's activations record, else the last axis of its shape in the Network overview; null
 * when no record says (patches records do not carry it yet).
 */
async function channelTotal(run, kinds, layer, step, payload) {
  if (Number.isInteger(payload.n_channels)) return payload.n_channels;
  try {
    if (kinds.includes("activations")) {
      const tag = (await api("tags", { run, kind: "activations" })).json[layer];
      const rec = tag ? await recordAt(run, tag, step) : null;
      if (Number.isInteger(rec?.payload?.n_channels)) return rec.payload.n_channels;
    }
    const overview = await networkOverview(run, kinds);
    const last = overview?.layers?.find((l) => l.path === layer)?.shape?.at(-1);
    return Number.isInteger(last) ? last : null;
  } catch (e) {
    return null;
  }
}

/**
 * What the grid shows, from the record's channels, tile_view and context; `total` is the
 * layer's channel count (null: unknown).
 */
export function caption(payload, total = null) {
  const rf = payload.receptive_field || {};
  const jump = Array.isArray(rf.jump) && rf.jump[0] === rf.jump[1] ? rf.jump[0] : rf.jump;
  const field = `Receptive field ${side(rf.size)} px (jump ${Array.isArray(jump) ? side(jump) : fmt(jump ?? "?")})`;
  const ctx = payload.context;
  const channels = payload.channels || [];
  const of = Number.isInteger(total) ? ` of ${total}` : "";
  const more =
    Number.isInteger(total) && channels.length < total
      ? " (MaxActivatingPatchesCallback(channels=...) picks others)"
      : "";
  const first =
    `Showing ${channels.length}${of} channels: ${channelList(channels)}${more}. ` +
    "Each row is one channel, best patch first.";
  if (payload.tile_view === "context" && ctx) {
    const zoom = `${ctx.zoom >= 1 ? "enlarged" : "shrunk"} ×${fmt(Number(ctx.zoom.toPrecision(2)))}`;
    const image = ctx.image ? `the ${side(ctx.image)} image` : "the image";
    return (
      `${first} ${field}: small next to ${image}, so each tile shows the ${side(ctx.size)} px ` +
      `around the field (${zoom}), framed in yellow; grey inside the frame: pixels the unit ` +
      "cannot see (padding)."
    );
  }
  const win = payload.window;
  const cut =
    win && Array.isArray(win.size) && Array.isArray(rf.size) &&
    (win.size[0] < rf.size[0] || win.size[1] < rf.size[1]);
  if (cut) {
    return (
      `${first} ${field}, wider than the image: each tile is the ${side(win.size)} px of it ` +
      "that can hold image pixels; grey: pixels the unit cannot see (beyond the image border, or padding)."
    );
  }
  return `${first} ${field}: each tile is that field; grey: pixels the unit cannot see (beyond the image border, or padding).`;
}

function valuesTable(payload) {
  const channels = payload.channels || [];
  const rows = channels.map((c, r) => {
    const values = payload.values?.[r] || [];
    // No image lifts it above zero: its "top" patches are ties at the first unit, not a pattern.
    const inactive = values.length > 0 && values.every((v) => typeof v === "number" && v <= 1e-6);
    return h(
      "tr",
      { class: inactive ? "inactive" : null },
      h(
        "th",
        { scope: "row" },
        String(c),
        inactive
          ? h("span", { class: "muted", title: "No image activates this channel above zero: its patches are ties, not a pattern." }, " inactive")
          : null,
      ),
      h("td", { class: "num" }, numberList(values)),
      h("td", { class: "num muted" }, (payload.indices?.[r] || []).join(", ")),
    );
  });
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
  const page = await openPage(el, ctx, {
    kind: "patches",
    empty: "has patch metadata but no patch images.",
  });
  if (!page) return null;
  const { name: layer, tag, steps } = page;
  let step = page.step;
  setState({ layer, step });

  const labels = h("div", { class: "row-labels" });
  const figure = imagePanel(ctx, {
    maxWidth: 820, // context tiles are ~88 px: nine of them at their own size
    alt: `${layer} top patches`,
    onload: (im) => payload && placeRowLabels(labels, im, payload),
    wrap: (img) => h("div", { class: "labelled-grid" }, labels, img),
  });
  const side = h("div", { class: "table-wrap" });
  const meta = h("p", { class: "meta" });
  let payload = null;

  async function show(s) {
    step = s;
    strip.setCurrent(s);
    await figure.show(imageUrl(run, tag, s, 0), `${layer}, epoch ${s}`);
    if (!ctx.alive() || step !== s) return;
    preloadNext(steps, s, (next) => imageUrl(run, tag, next, 0));
    const jsonTag = page.tags.json[layer];
    if (!jsonTag) return;
    const record = await recordAt(run, jsonTag, s);
    if (!ctx.alive() || step !== s || !record) return;
    const total = await channelTotal(run, ctx.kinds || [], layer, s, record.payload);
    if (!ctx.alive() || step !== s) return;
    payload = record.payload;
    setChildren(labels, (payload.channels || []).map((c) => h("span", { class: "row-label" }, `ch ${c}`)));
    const img = figure.el.querySelector("img");
    if (img.complete) placeRowLabels(labels, img, payload);
    meta.textContent = caption(payload, total);
    el.dataset.channels = String(total ?? "");
    el.dataset.tileView = payload.tile_view || "patch";
    setChildren(side, valuesTable(payload));
    el.dataset.rows = String((payload.channels || []).length);
  }

  const strip = filmstrip(steps, (s) => imageUrl(run, tag, s, 0), step, (s) => play.set(s));
  const play = page.stepper((s) => show(s).catch(() => {}));
  el.append(
    h("p", { class: "lead" }, "Dataset patches that excite each channel most (Zeiler & Fergus): what each unit has learned to detect."),
    h("div", { class: "controls" }, page.picker(), play.el),
    meta,
    h("div", { class: "row" }, figure.el, side),
    h("h3", null, "Over epochs"),
    strip.el,
  );
  el.dataset.layer = layer;
  el.dataset.steps = String(steps.length);
  await show(step);
  return () => {
    play.stop();
    strip.disconnect();
  };
}
