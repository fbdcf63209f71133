// The overview of the Network page: folding layers into blocks and stages, placing the visible
// nodes in columns (longest path from the input), the edges between them, and the colours of the
// channel thumbnails (a grayscale atlas, zero at mid-grey, coloured blue-white-red here).

import { loadImage } from "./util.js";

export const LEVELS = ["stages", "blocks", "layers"];

/**
 * The group of every layer at a fold level: the input alone; "head" for the layers after the
 * feature map's block; else its block ("b<k>") or stage ("s<k>", layers outside a stage join
 * the stage before them, or after them at the start); at "layers" every layer alone.
 */
export function groupIds(layers, level, featureMap) {
  const fm = layers.find((l) => l.path === featureMap);
  const headAfter = fm ? fm.block : Infinity;
  let stage = layers.find((l) => l.stage !== null && l.stage !== undefined)?.stage ?? 0;
  return layers.map((layer, k) => {
    if (k === 0) return "in";
    if (level === "layers") return `l${k}`;
    if (layer.block > headAfter) return "head";
    if (level === "blocks") return `b${layer.block}`;
    if (layer.stage !== null && layer.stage !== undefined) stage = layer.stage;
    return `s${stage}`;
  });
}

/**
 * The visible graph: a group that is folded shows as one node (its last layer, whose maps are
 * the group's output); `open` holds the groups unfolded by hand. Returns {nodes, edges,
 * columns}: nodes {k, group, members, folded, depth}, edges [from k, to k], columns [[node]].
 */
export function visibleGraph(layers, groups, open) {
  const members = new Map();
  groups.forEach((g, k) => {
    if (!members.has(g)) members.set(g, []);
    members.get(g).push(k);
  });
  const index = new Map(layers.map((l, k) => [l.path, k]));
  const nodes = [];
  const nodeOf = new Map();
  layers.forEach((layer, k) => {
    const list = members.get(groups[k]);
    const folded = list.length > 1 && !open.has(groups[k]);
    if (folded && k !== list[list.length - 1]) return;
    const node = { k, group: groups[k], members: folded ? list : [k], folded, depth: 0 };
    nodes.push(node);
    for (const m of node.members) nodeOf.set(m, node);
  });
  const edges = [];
  const seen = new Set();
  const preds = new Map(nodes.map((n) => [n, []]));
  for (const node of nodes) {
    for (const m of node.members) {
      for (const p of layers[m].inputs) {
        const from = nodeOf.get(index.get(p));
        if (!from || from === node || seen.has(`${from.k}>${node.k}`)) continue;
        seen.add(`${from.k}>${node.k}`);
        edges.push([from.k, node.k]);
        preds.get(node).push(from);
      }
    }
  }
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (node) => {
    if (depth.has(node)) return depth.get(node);
    if (visiting.has(node)) return 0; // a cycle made by folding: cut it
    visiting.add(node);
    const d = Math.max(-1, ...preds.get(node).map(depthOf)) + 1;
    visiting.delete(node);
    depth.set(node, d);
    return d;
  };
  const columns = [];
  for (const node of nodes) {
    node.depth = depthOf(node);
    (columns[node.depth] ||= []).push(node);
  }
  return { nodes, edges, columns: columns.filter(Boolean) };
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
          else resolve({ url: URL.createObjectURL(blob), width: canvas.width, height: canvas.height });
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

// Edges -----------------------------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function curve(svg, x1, y1, x2, y2, cls) {
  const mid = (x1 + x2) / 2;
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`);
  path.setAttribute("class", cls);
  svg.append(path);
}

/**
 * Draws one curve per edge between node elements (right edge of the source's header to the left
 * edge of the target's) into the `svg` layer below the nodes, sized to `host`'s content `size`.
 * `hot` edges (a Set of "from>to") and `links` ([element, element] pairs: an input channel's
 * tile and the selected unit's tile, drawn centre to centre) go into the `top` layer above.
 */
export function drawEdges([svg, top], host, size, edges, elementOf, hot = new Set(), links = []) {
  for (const layer of [svg, top]) {
    layer.replaceChildren();
    layer.setAttribute("width", String(size.scrollWidth));
    layer.setAttribute("height", String(size.scrollHeight));
  }
  const box = host.getBoundingClientRect();
  const dx = host.scrollLeft - box.left;
  const dy = host.scrollTop - box.top;
  for (const [from, to] of edges) {
    const a = elementOf(from);
    const b = elementOf(to);
    if (!a || !b) continue;
    const ra = a.getBoundingClientRect();
    const rb = b.getBoundingClientRect();
    const y1 = ra.top + Math.min(ra.height / 2, 14) + dy;
    const y2 = rb.top + Math.min(rb.height / 2, 14) + dy;
    const on = hot.has(`${from}>${to}`);
    curve(on ? top : svg, ra.right + dx, y1, rb.left + dx, y2, on ? "edge hot" : "edge");
  }
  for (const [a, b] of links) {
    const ra = a.getBoundingClientRect();
    const rb = b.getBoundingClientRect();
    curve(top, ra.right + dx, ra.top + ra.height / 2 + dy, rb.left + dx, rb.top + rb.height / 2 + dy, "edge link");
  }
}
