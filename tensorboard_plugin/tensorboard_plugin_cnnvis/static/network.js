// Network page: CNN Explainer for any Keras model. The overview shows every layer as a column of
// channel thumbnails with the graph's edges (deep models folded into stages and blocks); a click
// on a channel opens one unit: windows, kernels, products, sum, bias and activation, at any
// logged epoch and for each probe (tags json/network/overview, json/network/layer/<path>,
// network/atlas, network/input).

import { recordAt, showEmpty } from "./page.js";
import {
  api,
  control,
  getState,
  h,
  imageUrl,
  nearestStep,
  notice,
  pick,
  segmented,
  setChildren,
  setState,
  stepper,
} from "./util.js";
import { LEVELS, colouredAtlas, drawEdges, groupIds, mapCanvas, visibleGraph } from "./network_graph.js";
import { breakdown, channelMap, decodeAll, fromLogged } from "./network_units.js";
import { num, renderDetail } from "./network_detail.js";

const TILE = 32; // displayed thumbnail size (px, longest side, integer zoom)
const PER_COLUMN = 16; // thumbnails stacked per sub-column of a node
const SVG = "http://www.w3.org/2000/svg";

function shapeText(shape) {
  return shape.join("×");
}

/** The sprite style showing tile `i` of a layer's atlas block at an integer zoom. */
function spriteStyle(atlas, block, i, zoom) {
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

/** Units mode: the channel's thumbnail, enlarged, with its logged (peak) unit marked. */
function thumbPanel(atlas, layer, channel, pos) {
  const i = layer.channels.indexOf(channel);
  if (!atlas || !layer.atlas || i < 0 || pos.length !== 2) return null;
  const [th, tw] = layer.atlas.tile;
  const [hh, ww] = layer.shape;
  const zoom = Math.max(1, Math.floor(192 / Math.max(th, tw)));
  const factor = Math.ceil(Math.max(hh, ww) / Math.max(th, tw));
  const mark = h("div", {
    class: "net-mark",
    style: { left: `${Math.floor(pos[1] / factor) * zoom}px`, top: `${Math.floor(pos[0] / factor) * zoom}px`, width: `${zoom}px`, height: `${zoom}px` },
  });
  return h(
    "figure",
    { class: "panel net-position" },
    h("figcaption", null, `Channel ${channel}: its strongest unit`),
    h("div", { class: "net-map-wrap net-sprite", style: spriteStyle(atlas, layer.atlas, i, zoom) }, mark),
    h("p", { class: "meta" }, "A large model: each shown channel's strongest unit is logged with the arithmetic behind it."),
  );
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
        { type: "button", class: "net-bar", dataset: { channel: c }, title: `unit ${c}: ${values[j]}`, onclick: () => onPick(c) },
        h("span", { class: "net-bar-label" }, names ? names[c] ?? String(c) : String(c)),
        h("span", { class: "net-bar-track" }, h("span", { class: values[j] < 0 ? "net-bar-fill neg" : "net-bar-fill", style: { width: `${(100 * Math.abs(values[j])) / top}%` } })),
        h("span", { class: "net-bar-value" }, num(values[j])),
      ),
    ),
  );
}

function readUnit() {
  const path = getState("unit");
  if (path === null) return null;
  const pos = (getState("pos") || "").split(",").filter((s) => s !== "").map(Number);
  return { path, channel: Number(getState("ch", 0)), pos: pos.every(Number.isInteger) ? pos : [] };
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const tags = await api("tags", { run, kind: "network" });
  if (!ctx.alive()) return null;
  const overviewTag = tags.json.overview;
  if (!overviewTag) {
    showEmpty(el, notice(`The run “${run}” has no Network overview (tag json/network/overview).`));
    return null;
  }
  const { steps } = await api("steps", { run, tag: overviewTag });
  if (!ctx.alive()) return null;
  let step = nearestStep(steps, getState("step"));
  let overview = (await recordAt(run, overviewTag, step)).payload;
  if (!ctx.alive()) return null;
  const nProbes = overview.n_probes;
  const probe = Number(pick([...Array(nProbes).keys()], getState("probe"), 0));
  const level = pick(LEVELS, getState("fold"), overview.layers.length > 40 ? "blocks" : "layers");
  const open = new Set((getState("open") || "").split(",").filter(Boolean));
  let unit = readUnit();
  setState({ step, probe, fold: level });

  const host = h("div", { class: "net-graph" });
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "net-edges");
  const svgTop = document.createElementNS(SVG, "svg");
  svgTop.setAttribute("class", "net-edges above");
  const columnsEl = h("div", { class: "net-columns" });
  host.append(svg, columnsEl, svgTop);
  const detailBox = h("section", { class: "net-detail", "aria-live": "polite" });
  const prediction = h("p", { class: "meta net-prediction" });
  const records = new Map();
  let graph = null;
  let lastOf = new Map();
  let unitLinks = { path: null, input: null, channels: [] }; // the open unit's input channels
  let nodeEls = new Map();
  let atlas = null;

  async function layerRecord(path) {
    const tag = tags.json[`layer/${path}`];
    if (!tag) throw new Error(`No record of layer ${path}.`);
    const key = `${step}|${path}`;
    if (!records.has(key)) records.set(key, recordAt(run, tag, step).then((r) => decodeAll(r.payload)));
    return records.get(key);
  }

  function pickUnit(path, channel, pos = null) {
    unit = { path, channel, pos: pos || [] };
    setState({ unit: path, ch: channel, pos: pos ? pos.join(",") : null });
    markSelection();
    showDetail().catch((e) => setChildren(detailBox, notice(`Could not open this unit: ${e.message}`, "error")));
  }

  function markSelection() {
    for (const t of columnsEl.querySelectorAll(".selected")) t.classList.remove("selected");
    if (!graph) return;
    const k = unit ? overview.layers.findIndex((l) => l.path === unit.path) : -1;
    const node = nodeEls.get(k);
    if (node) {
      node.classList.add("selected");
      const tiles = [...node.querySelectorAll("[data-channel]")];
      const tile = tiles.find((t) => Number(t.dataset.channel) === unit.channel);
      if (tile) tile.classList.add("selected");
    }
    const hot = new Set(graph.edges.filter(([, to]) => to === k).map(([a, b]) => `${a}>${b}`));
    const target = node && [...node.querySelectorAll("[data-channel]")].find((t) => Number(t.dataset.channel) === unit.channel);
    const links = [];
    if (target && unitLinks.path === unit.path) {
      const source = nodeEls.get(overview.layers.findIndex((l) => l.path === unitLinks.input));
      for (const ch of unitLinks.channels) {
        const tile = source && [...source.querySelectorAll("[data-channel]")].find((t) => Number(t.dataset.channel) === ch);
        if (tile) links.push([tile, target]);
      }
    }
    drawEdges([svg, svgTop], host, columnsEl, graph.edges, (i) => nodeEls.get(i)?.querySelector(".net-head"), hot, links);
  }

  function nodeElement(node) {
    const layer = overview.layers[node.k];
    const names = node.k === overview.layers.length - 1 ? overview.class_names : null;
    const head = h(
      "div",
      { class: "net-head" },
      node.folded
        ? h("button", { type: "button", class: "net-fold", title: "Unfold", onclick: () => toggle(node.group, true) }, `▸ ${node.members.length} layers`)
        : null,
      !node.folded && open.has(node.group) && lastOf.get(node.group) === node.k
        ? h("button", { type: "button", class: "net-fold", title: "Fold", onclick: () => toggle(node.group, false) }, "▾ fold")
        : null,
      h("span", { class: "net-name" }, layer.path),
      h("span", { class: "net-type" }, `${layer.type} · ${shapeText(layer.shape)}`),
    );
    const total = layer.shape.length ? layer.shape[layer.shape.length - 1] : 0;
    const note = layer.channels.length < total ? h("span", { class: "net-note" }, `${layer.channels.length} of ${total}, most active`) : null;
    const onPick = (c) => pickUnit(layer.path, c);
    let body = null;
    if (layer.atlas && atlas) {
      const rows = Math.min(PER_COLUMN, layer.channels.length);
      body = h("div", { class: "net-tiles", style: { gridTemplateRows: `repeat(${rows}, auto)` } }, layer.channels.map((_, i) => tileElement(atlas, layer, i, onPick)));
    } else if (layer.values) {
      body = barsElement(layer, probe, names, onPick);
    }
    const input = node.k === 0 && tags.images.input ? h("img", { class: "net-input", alt: `probe ${probe}`, src: imageUrl(run, tags.images.input, step, probe) }) : null;
    return h("div", { class: node.folded ? "net-node folded" : "net-node", dataset: { k: node.k, path: layer.path, group: node.group } }, head, note, input, body);
  }

  function toggle(group, unfold) {
    if (unfold) open.add(group);
    else open.delete(group);
    setState({ open: [...open].join(",") || null });
    renderGraph();
  }

  function renderGraph() {
    const groups = groupIds(overview.layers, level, overview.feature_map);
    lastOf = new Map(groups.map((g, k) => [g, k]));
    graph = visibleGraph(overview.layers, groups, open);
    nodeEls = new Map();
    setChildren(
      columnsEl,
      graph.columns.map((column) =>
        h(
          "div",
          { class: "net-column" },
          column.map((node) => {
            const e = nodeElement(node);
            nodeEls.set(node.k, e);
            return e;
          }),
        ),
      ),
    );
    el.dataset.columns = String(graph.columns.length);
    el.dataset.nodes = String(graph.nodes.length);
    requestAnimationFrame(markSelection);
  }

  function peak(output, channel) {
    const map = channelMap(output, channel);
    let best = 0;
    map.values.forEach((v, i) => {
      if (Math.abs(v) > Math.abs(map.values[best])) best = i;
    });
    return [Math.floor(best / map.w), best % map.w];
  }

  async function showDetail() {
    const wanted = unit;
    const k = overview.layers.findIndex((l) => l.path === wanted.path);
    if (k < 0) {
      setChildren(detailBox, notice(`Layer ${wanted.path} is not in this record.`));
      return;
    }
    const info = overview.layers[k];
    if (info.type === "InputLayer") {
      setChildren(detailBox, notice("The input: pick a unit of a layer to see how it is computed from it."));
      return;
    }
    setChildren(detailBox, h("p", { class: "meta" }, "Loading…"));
    const rec = await layerRecord(info.path);
    if (!ctx.alive() || unit !== wanted) return;
    const scale = (info.scales || [])[probe] || 0;
    let detail;
    let mapEl = null;
    let inputs = [];
    if (rec.mode === "full") {
      const output = rec.outputs[probe];
      inputs = await Promise.all(info.inputs.map((p) => layerRecord(p).then((r) => r.outputs[probe])));
      if (!ctx.alive() || unit !== wanted) return;
      if (rec.input_values) inputs[0] = rec.input_values[probe];
      const spatial = output.shape.length === 3;
      let pos = wanted.pos.length === output.shape.length - 1 ? wanted.pos : spatial ? peak(output, wanted.channel) : [];
      if (!pos.every((p, a) => p >= 0 && p < output.shape[a])) pos = spatial ? peak(output, wanted.channel) : [];
      detail = breakdown(info, rec.weights, inputs, output, wanted.channel, pos, overview.top);
      if (spatial) mapEl = positionPicker(channelMap(output, wanted.channel), scale, pos, (p) => pickUnit(info.path, wanted.channel, p));
    } else {
      const i = info.channels.indexOf(wanted.channel);
      const logged = i >= 0 ? rec.units?.[probe]?.[i] : null;
      if (!logged) {
        setChildren(detailBox, notice(`No unit of ${info.path} was logged for channel ${wanted.channel}.`));
        return;
      }
      detail = fromLogged(logged);
      mapEl = thumbPanel(atlas, info, wanted.channel, detail.position);
    }
    const inputMap = (path, ch, rows, cols) => {
      if (!inputs[0] || path !== info.inputs[0] || !rows || inputs[0].shape.length !== 3) return null;
      return windowMap(channelMap(inputs[0], ch), rows, cols);
    };
    setChildren(
      detailBox,
      h("div", { class: "net-detail-row" }, mapEl, renderDetail(detail, { info, classNames: overview.class_names, inputMap })),
    );
    el.dataset.unit = `${info.path}|${detail.channel}|${detail.position.join(",")}`;
    const terms = detail.terms && !Array.isArray(detail.terms) ? detail.terms : null;
    unitLinks = { path: info.path, input: terms ? terms.input : null, channels: terms ? terms.channels : [] };
    markSelection();
  }

  async function show(s) {
    step = s;
    setState({ step: s });
    const record = await recordAt(run, overviewTag, s);
    if (!ctx.alive() || step !== s) return;
    overview = record.payload;
    try {
      atlas = await colouredAtlas(imageUrl(run, tags.images.atlas, record.step, probe));
    } catch (e) {
      atlas = null;
    }
    if (!ctx.alive() || step !== s) return;
    const p = (overview.probes || [])[probe];
    prediction.textContent = p
      ? "Prediction: " + p.classes.slice(0, 3).map((c, j) => `${(overview.class_names || [])[c] ?? c} ${num(p.probabilities[j])}`).join(", ")
      : "";
    renderGraph();
    if (unit) await showDetail();
  }

  const probePicker = h(
    "div",
    { class: "probe-picker", role: "group", "aria-label": "Probe image" },
    [...Array(nProbes).keys()].map((i) =>
      h(
        "button",
        { type: "button", class: i === probe ? "probe-button current" : "probe-button", title: `probe ${i}`, dataset: { probe: i }, onclick: () => ctx.go({ probe: i }) },
        tags.images.input ? h("img", { class: "thumb", alt: `probe ${i}`, src: imageUrl(run, tags.images.input, step, i) }) : `#${i}`,
      ),
    ),
  );
  const folds = segmented("Fold", LEVELS, level, (v) => ctx.go({ fold: v, open: null }), { key: "fold" });
  const play = stepper(steps, step, (s) => show(s).catch(() => {}), {});
  const legend = h("p", { class: "meta net-legend" }, h("span", { class: "net-swatch neg" }), " negative ", h("span", { class: "net-swatch zero" }), " zero ", h("span", { class: "net-swatch pos" }), " positive — each layer scaled to its largest |value| for this probe. Click a channel to see how one unit is computed.");
  el.append(
    h("p", { class: "lead" }, "What every layer computes for one image (after CNN Explainer): layers as columns, one thumbnail per channel, the graph's edges; click a channel, then a position, to follow the arithmetic."),
    h("div", { class: "controls" }, control("Probe", probePicker, "div"), folds),
    h("div", { class: "controls" }, play.el),
    prediction,
    legend,
    host,
    detailBox,
  );
  el.dataset.mode = overview.mode;
  el.dataset.layers = String(overview.layers.length);
  const onResize = () => graph && markSelection();
  window.addEventListener("resize", onResize);
  await show(step);
  return () => {
    play.stop();
    window.removeEventListener("resize", onResize);
  };
}

/** The channel's full map, enlarged, with the unit marked; a click picks another position. */
function positionPicker(map, scale, pos, onPick) {
  const zoom = Math.max(1, Math.floor(192 / Math.max(map.h, map.w)));
  const canvas = mapCanvas(map, scale, zoom, "net-map pickable");
  const mark = h("div", { class: "net-mark", style: { left: `${pos[1] * zoom}px`, top: `${pos[0] * zoom}px`, width: `${zoom}px`, height: `${zoom}px` } });
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    const y = Math.min(map.h - 1, Math.floor(((e.clientY - r.top) / r.height) * map.h));
    const x = Math.min(map.w - 1, Math.floor(((e.clientX - r.left) / r.width) * map.w));
    onPick([y, x]);
  });
  return h("figure", { class: "panel net-position" }, h("figcaption", null, `Click a position (${map.h}×${map.w})`), h("div", { class: "net-map-wrap" }, canvas, mark));
}

/** An input channel's map with the window of the unit outlined (rows/cols may leave it: padding). */
function windowMap(map, rows, cols) {
  const zoom = Math.max(1, Math.floor(64 / Math.max(map.h, map.w)));
  const scale = Math.max(0, ...Array.from(map.values).map(Math.abs));
  const canvas = mapCanvas(map, scale, zoom, "net-map small");
  const top = rows[0] * zoom;
  const left = cols[0] * zoom;
  const box = h("div", { class: "net-window", style: { top: `${top}px`, left: `${left}px`, width: `${(cols[cols.length - 1] - cols[0] + 1) * zoom}px`, height: `${(rows[rows.length - 1] - rows[0] + 1) * zoom}px` } });
  return h("div", { class: "net-map-wrap" }, canvas, box);
}
