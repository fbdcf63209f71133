// The pictures of the Network page: the blue-white-red colours of its maps, the coloured
// thumbnail atlas, channel thumbnails and bars in the overview, and the maps beside a unit's
// arithmetic (the channel with its unit, an input channel with its window).

import { h, loadImage } from "./util.js";

const TILE = 32; // displayed thumbnail size (px, longest side, integer zoom)
const PER_COLUMN = 16; // thumbnails stacked per sub-column of a node

/** A number with 6 significant digits (the sums the page checks are shown this way). */
export function num(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (!Number.isFinite(value)) return value > 0 ? "∞" : "−∞";
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-4 || abs >= 1e6)) return value.toExponential(5);
  return String(Number(value.toPrecision(6)));
}

/** A number with 3 significant digits, for the bars and grid cells (the exact value is the title). */
export function short(value) {
  if (!Number.isFinite(value)) return num(value);
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs < 1e-3 || abs >= 1e4) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

// Colours -------------------------------------------------------------------------------------

const ANCHORS = [
  [0, [33, 102, 172]],
  [64, [103, 169, 207]],
  [128, [247, 247, 247]],
  [192, [239, 138, 98]],
  [255, [178, 24, 43]],
];

/** RGB of a byte 0..255 on the blue (negative) - white (zero) - red (positive) scale. */
export const LUT = Array.from({ length: 256 }, (_, v) => {
  const i = ANCHORS.findIndex(([x]) => x >= v);
  if (i <= 0) return ANCHORS[0][1];
  const [x0, c0] = ANCHORS[i - 1];
  const [x1, c1] = ANCHORS[i];
  const f = (v - x0) / (x1 - x0);
  return c0.map((c, j) => Math.round(c + f * (c1[j] - c)));
});

/** The byte of `value` for a layer whose largest |value| is `scale` (as the atlas maps it). */
export function byteOf(value, scale) {
  if (!(scale > 0)) return 128;
  return Math.round(127.5 + 127.5 * Math.max(-1, Math.min(1, value / scale)));
}

const atlases = new Map();

/** The grayscale atlas at `url` coloured with LUT: resolves to {url (blob), width, height}. */
export function colouredAtlas(url) {
  if (!atlases.has(url)) {
    const promise = loadImage(url).then((img) => {
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      const g = canvas.getContext("2d", { willReadFrequently: true });
      g.drawImage(img, 0, 0);
      const pixels = g.getImageData(0, 0, canvas.width, canvas.height);
      const d = pixels.data;
      for (let i = 0; i < d.length; i += 4) {
        const [r, gg, b] = LUT[d[i]];
        d[i] = r;
        d[i + 1] = gg;
        d[i + 2] = b;
        d[i + 3] = 255;
      }
      g.putImageData(pixels, 0, 0);
      return new Promise((resolve, reject) =>
        canvas.toBlob((blob) => {
          if (!blob) reject(new Error("Could not colour the thumbnails."));
          else
            resolve({ url: URL.createObjectURL(blob), width: canvas.width, height: canvas.height });
        }),
      );
    });
    promise.catch(() => atlases.delete(url));
    atlases.set(url, promise);
  }
  return atlases.get(url);
}

/** A map {h, w, values} drawn into a canvas, `zoom` pixels per value, coloured like the atlas. */
export function mapCanvas(map, scale, zoom, cls = "net-map") {
  const canvas = document.createElement("canvas");
  canvas.width = map.w;
  canvas.height = map.h;
  canvas.className = cls;
  canvas.style.width = `${map.w * zoom}px`;
  canvas.style.height = `${map.h * zoom}px`;
  const g = canvas.getContext("2d");
  const pixels = g.createImageData(map.w, map.h);
  map.values.forEach((v, i) => {
    const [r, gg, b] = LUT[Number.isFinite(v) ? byteOf(v, scale) : 128];
    pixels.data.set([r, gg, b, 255], i * 4);
  });
  g.putImageData(pixels, 0, 0);
  return canvas;
}

/** The sprite style showing tile `i` of a layer's atlas block at an integer zoom. */
export function spriteStyle(atlas, block, i, zoom) {
  const [th, tw] = block.tile;
  const x = block.x + (i % block.cols) * (tw + block.pad);
  const y = block.y + Math.floor(i / block.cols) * (th + block.pad);
  return {
    width: `${tw * zoom}px`,
    height: `${th * zoom}px`,
    backgroundImage: `url("${atlas.url}")`,
    backgroundSize: `${atlas.width * zoom}px ${atlas.height * zoom}px`,
    backgroundPosition: `${-x * zoom}px ${-y * zoom}px`,
  };
}

function shapeText(shape) {
  return shape.join("×");
}

function tileElement(atlas, layer, i, onPick) {
  const [th, tw] = layer.atlas.tile;
  const zoom = Math.max(1, Math.floor(TILE / Math.max(th, tw)));
  const channel = layer.channels[i];
  return h("button", {
    type: "button",
    class: "net-tile",
    title: `channel ${channel} · mean |value| ${num(layer.activity[i])}`,
    dataset: { channel },
    style: spriteStyle(atlas, layer.atlas, i, zoom),
    onclick: () => onPick(channel),
  });
}

function barsElement(layer, probe, names, onPick) {
  const values = (layer.values || [])[probe] || [];
  const top = Math.max(1e-12, ...values.map(Math.abs));
  return h(
    "div",
    { class: "net-bars" },
    layer.channels.map((c, j) =>
      h(
        "button",
        {
          type: "button",
          class: "net-bar",
          dataset: { channel: c },
          title: `unit ${c}: ${values[j]}`,
          onclick: () => onPick(c),
        },
        h("span", { class: "net-bar-label" }, names ? (names[c] ?? String(c)) : String(c)),
        h(
          "span",
          { class: "net-bar-track" },
          h("span", {
            class: values[j] < 0 ? "net-bar-fill neg" : "net-bar-fill",
            style: { width: `${(100 * Math.abs(values[j])) / top}%` },
          }),
        ),
        h("span", { class: "net-bar-value" }, short(values[j])),
      ),
    ),
  );
}

/**
 * One node of the overview: its header (fold button, stage badge, name, type and shape), the
 * shown channels as thumbnails from the coloured atlas (or bars for a vector), the probe image
 * for the input. `opts`: {atlas, probe, names (class names of a head's bars), inputUrl,
 * foldable, badge, label (the name shown; the full path is its tooltip), onPick(channel),
 * onToggle(unfold)}.
 */
export function nodeElement(layer, node, opts) {
  const { atlas, probe, names, inputUrl, foldable, badge, label, onPick, onToggle } = opts;
  const head = h(
    "div",
    { class: "net-head" },
    node.folded
      ? h(
          "button",
          {
            type: "button",
            class: "net-fold",
            title: "Unfold",
            onclick: () => onToggle(true),
          },
          `▸ ${node.members.length} layers`,
        )
      : null,
    foldable
      ? h(
          "button",
          {
            type: "button",
            class: "net-fold",
            title: "Fold",
            onclick: () => onToggle(false),
          },
          "▾ fold",
        )
      : null,
    badge || null,
    h("span", { class: "net-name", title: layer.path }, label ?? layer.path),
    h("span", { class: "net-type" }, `${layer.type} · ${shapeText(layer.shape)}`),
  );
  const total = layer.shape.length ? layer.shape[layer.shape.length - 1] : 0;
  const note =
    layer.channels.length < total
      ? h("span", { class: "net-note" }, `${layer.channels.length} of ${total}, most active`)
      : null;
  let body = null;
  if (layer.atlas && atlas) {
    const rows = Math.min(PER_COLUMN, layer.channels.length);
    body = h(
      "div",
      { class: "net-tiles", style: { gridTemplateRows: `repeat(${rows}, auto)` } },
      layer.channels.map((_, i) => tileElement(atlas, layer, i, onPick)),
    );
  } else if (layer.values) {
    body = barsElement(layer, probe, names, onPick);
  }
  const input = inputUrl
    ? h("img", { class: "net-input", alt: `probe ${probe}`, src: inputUrl })
    : null;
  return h(
    "div",
    {
      class: node.folded ? "net-node folded" : "net-node",
      dataset: { k: node.k, path: layer.path, group: node.group },
    },
    head,
    note,
    input,
    body,
  );
}

// Maps beside the arithmetic -------------------------------------------------------------------

/** Units mode: the channel's thumbnail, enlarged, with its logged (peak) unit marked. */
export function thumbPanel(atlas, layer, channel, pos) {
  const i = layer.channels.indexOf(channel);
  if (!atlas || !layer.atlas || i < 0 || pos.length !== 2) return null;
  const [th, tw] = layer.atlas.tile;
  const [hh, ww] = layer.shape;
  const zoom = Math.max(1, Math.floor(192 / Math.max(th, tw)));
  const factor = Math.ceil(Math.max(hh, ww) / Math.max(th, tw));
  const mark = h("div", {
    class: "net-mark",
    style: {
      left: `${Math.floor(pos[1] / factor) * zoom}px`,
      top: `${Math.floor(pos[0] / factor) * zoom}px`,
      width: `${zoom}px`,
      height: `${zoom}px`,
    },
  });
  return h(
    "figure",
    { class: "panel net-position" },
    h("figcaption", null, `Channel ${channel}: its strongest unit`),
    h(
      "div",
      { class: "net-map-wrap net-sprite", style: spriteStyle(atlas, layer.atlas, i, zoom) },
      mark,
    ),
    h(
      "p",
      { class: "meta" },
      "A large model: each shown channel's strongest unit is logged with the arithmetic behind it.",
    ),
  );
}

/** The channel's full map, enlarged, with the unit marked; a click picks another position. */
export function positionPicker(map, scale, pos, onPick) {
  const zoom = Math.max(1, Math.floor(192 / Math.max(map.h, map.w)));
  const canvas = mapCanvas(map, scale, zoom, "net-map pickable");
  const mark = h("div", {
    class: "net-mark",
    style: {
      left: `${pos[1] * zoom}px`,
      top: `${pos[0] * zoom}px`,
      width: `${zoom}px`,
      height: `${zoom}px`,
    },
  });
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    const y = Math.min(map.h - 1, Math.floor(((e.clientY - r.top) / r.height) * map.h));
    const x = Math.min(map.w - 1, Math.floor(((e.clientX - r.left) / r.width) * map.w));
    onPick([y, x]);
  });
  return h(
    "figure",
    { class: "panel net-position" },
    h("figcaption", null, `Click a position (${map.h}×${map.w})`),
    h("div", { class: "net-map-wrap" }, canvas, mark),
  );
}

/** An input channel's map with the window of the unit outlined (rows/cols may leave it: padding). */
export function windowMap(map, rows, cols) {
  const zoom = Math.max(1, Math.floor(64 / Math.max(map.h, map.w)));
  const scale = Math.max(0, ...Array.from(map.values).map(Math.abs));
  const canvas = mapCanvas(map, scale, zoom, "net-map small");
  const top = rows[0] * zoom;
  const left = cols[0] * zoom;
  const box = h("div", {
    class: "net-window",
    style: {
      top: `${top}px`,
      left: `${left}px`,
      width: `${(cols[cols.length - 1] - cols[0] + 1) * zoom}px`,
      height: `${(rows[rows.length - 1] - rows[0] + 1) * zoom}px`,
    },
  });
  return h("div", { class: "net-map-wrap" }, canvas, box);
}
