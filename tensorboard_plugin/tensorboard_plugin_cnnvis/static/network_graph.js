// The graph of the Network page's overview: folding layers into blocks and stages, placing the
// visible nodes in columns (longest path from the input), and drawing the edges between them.

import { svg } from "./charts.js";

export const LEVELS = ["stages", "blocks", "layers"];

/**
 * The group of every layer at a fold level: the input alone; "head" for the layers after the
 * feature map's block; else its block ("b<k>") or stage ("s<k>"; a layer outside every stage,
 * such as the padding before a strided convolution, joins the next stage, or the last one).
 * At "layers" every layer is alone.
 */
export function groupIds(layers, level, featureMap) {
  const fm = layers.find((l) => l.path === featureMap);
  const headAfter = fm ? fm.block : Infinity;
  const staged = (l) => l.stage !== null && l.stage !== undefined;
  const stages = new Array(layers.length);
  let next = [...layers].reverse().find(staged)?.stage ?? 0;
  for (let k = layers.length - 1; k >= 0; k -= 1) {
    if (staged(layers[k])) next = layers[k].stage;
    stages[k] = next;
  }
  return layers.map((layer, k) => {
    if (k === 0) return "in";
    if (level === "layers") return `l${k}`;
    if (layer.block > headAfter) return "head";
    return level === "blocks" ? `b${layer.block}` : `s${stages[k]}`;
  });
}

/**
 * The "<model>/" that every nested layer path (one with a "/") starts with, or "": the
 * overview shows names without it, e.g. "block_1_expand" for "mobilenetv2_1.00_96/block_1_expand".
 */
export function nestedPrefix(paths) {
  let common = null;
  for (const path of paths) {
    const parts = path.split("/").slice(0, -1);
    if (!parts.length) continue;
    if (common === null) common = parts;
    let i = 0;
    while (i < common.length && i < parts.length && common[i] === parts[i]) i += 1;
    common = common.slice(0, i);
  }
  return common && common.length ? `${common.join("/")}/` : "";
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

// Edges -----------------------------------------------------------------------------------------

function curve(layer, x1, y1, x2, y2, cls) {
  const mid = (x1 + x2) / 2;
  const d = `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`;
  layer.append(svg("path", { d, class: cls }));
}

function arc(layer, x1, y, x2, over, cls) {
  const d = `M${x1},${y} C${x1 + 30},${over} ${x2 - 30},${over} ${x2},${y}`;
  layer.append(svg("path", { d, class: cls }));
}

/**
 * Draws one curve per edge between node elements (right edge of the source's header to the left
 * edge of the target's) into the `below` layer under the nodes, sized to `host`'s content `size`.
 * Into the `top` layer above them go the `hot` edges (a Set of "from>to"), the `skip` edges
 * (those that pass over other columns: dashed, arched over the nodes when both ends are in one
 * row) and the `links`
 * ([element, element] pairs: an input channel's tile and the selected unit's tile).
 */
export function drawEdges([below, top], host, size, edges, elementOf, { hot, links, skip }) {
  for (const layer of [below, top]) {
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
    const key = `${from}>${to}`;
    const cls = hot.has(key) ? "edge hot" : skip.has(key) ? "edge skip" : "edge";
    if (cls === "edge skip" && Math.abs(y1 - y2) < 2) {
      arc(top, ra.right + dx, y1, rb.left + dx, ra.top + dy - 6, cls); // over the columns between
    } else {
      curve(cls === "edge" ? below : top, ra.right + dx, y1, rb.left + dx, y2, cls);
    }
  }
  for (const [a, b] of links) {
    const ra = a.getBoundingClientRect();
    const rb = b.getBoundingClientRect();
    curve(
      top,
      ra.right + dx,
      ra.top + ra.height / 2 + dy,
      rb.left + dx,
      rb.top + rb.height / 2 + dy,
      "edge link",
    );
  }
}
