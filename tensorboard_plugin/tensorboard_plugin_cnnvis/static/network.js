// Network page: CNN Explainer for any Keras model. The overview shows every layer as a column of
// channel thumbnails with the graph's edges (deep models folded into stages and blocks); a click
// on a channel opens one unit: windows, kernels, products, sum, bias and activation, at any
// logged epoch and for each probe (tags json/network/overview, json/network/layer/<path>,
// network/atlas, network/input).

import { svg } from "./charts.js";
import { probePicker, recordAt, showEmpty } from "./page.js";
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
import { LEVELS, drawEdges, groupIds, nestedPrefix, visibleGraph } from "./network_graph.js";
import {
  colouredAtlas,
  nodeElement,
  positionPicker,
  thumbPanel,
  windowMap,
} from "./network_maps.js";
import { breakdown, channelMap, decodeAll, fromLogged, peak } from "./network_units.js";
import { renderDetail } from "./network_detail.js";

function readUnit() {
  const path = getState("unit");
  if (path === null) return null;
  const pos = (getState("pos") || "")
    .split(",")
    .filter((s) => s !== "")
    .map(Number);
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
  const prefix = nestedPrefix(overview.layers.map((l) => l.path));
  const label = (path) => (prefix && path.startsWith(prefix) ? path.slice(prefix.length) : path);

  const host = h("div", { class: "net-graph" });
  const edgesBelow = svg("svg", { class: "net-edges" });
  const edgesAbove = svg("svg", { class: "net-edges above" });
  const columnsEl = h("div", { class: "net-columns" });
  host.append(edgesBelow, columnsEl, edgesAbove);
  const detailBox = h("section", { class: "net-detail", "aria-live": "polite" });
  const prediction = h("p", { class: "meta net-prediction" });
  const records = new Map();
  let graph = null;
  let lastOf = new Map();
  let stageBadge = new Map();
  let unitLinks = { path: null, input: null, channels: [] }; // the open unit's input channels
  let nodeEls = new Map();
  let atlas = null;

  async function layerRecord(path) {
    const tag = tags.json[`layer/${path}`];
    if (!tag) throw new Error(`No record of layer ${path}.`);
    const key = `${step}|${path}`;
    if (!records.has(key))
      records.set(
        key,
        recordAt(run, tag, step).then((r) => decodeAll(r.payload)),
      );
    return records.get(key);
  }

  /** Scrolls the unit's detail into view (smoothly), below the sticky header, unless it
   * already starts in the upper part of the screen. */
  function reveal() {
    const header = document.querySelector("header.top")?.getBoundingClientRect().bottom || 0;
    const top = detailBox.getBoundingClientRect().top;
    if (top >= header && top <= window.innerHeight * 0.6) return;
    detailBox.style.scrollMarginTop = `${Math.max(0, header) + 8}px`;
    detailBox.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  // A channel picked in the overview (no position) brings its detail into view; a position
  // picked on the detail's own map leaves the view where it is.
  function pickUnit(path, channel, pos = null) {
    const picked = { path, channel, pos: pos || [] };
    unit = picked;
    setState({ unit: path, ch: channel, pos: pos ? pos.join(",") : null });
    markSelection();
    showDetail()
      .then(() => ctx.alive() && unit === picked && !pos && reveal())
      .catch((e) =>
        setChildren(detailBox, notice(`Could not open this unit: ${e.message}`, "error")),
      );
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
    const target =
      node &&
      [...node.querySelectorAll("[data-channel]")].find(
        (t) => Number(t.dataset.channel) === unit.channel,
      );
    const links = [];
    if (target && unitLinks.path === unit.path) {
      const source = nodeEls.get(overview.layers.findIndex((l) => l.path === unitLinks.input));
      for (const ch of unitLinks.channels) {
        const tile =
          source &&
          [...source.querySelectorAll("[data-channel]")].find(
            (t) => Number(t.dataset.channel) === ch,
          );
        if (tile) links.push([tile, target]);
      }
    }
    const depth = new Map(graph.nodes.map((n) => [n.k, n.depth]));
    const skip = new Set(
      graph.edges.filter(([a, b]) => depth.get(b) - depth.get(a) > 1).map(([a, b]) => `${a}>${b}`),
    );
    const head = (i) => nodeEls.get(i)?.querySelector(".net-head");
    drawEdges([edgesBelow, edgesAbove], host, columnsEl, graph.edges, head, { hot, links, skip });
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
    stageBadge = new Map();
    const seen = new Set();
    for (const node of [...graph.nodes].sort((a, b) => a.members[0] - b.members[0])) {
      const stage = overview.layers[node.k].stage;
      const info = (overview.stages || [])[stage];
      if (stage === null || stage === undefined || seen.has(stage) || !info) continue;
      seen.add(stage);
      stageBadge.set(
        node.k,
        h("span", { class: "net-stage" }, `stage ${stage + 1} · ${info.resolution.join("×")}`),
      );
    }
    nodeEls = new Map();
    setChildren(
      columnsEl,
      graph.columns.map((column) =>
        h(
          "div",
          { class: "net-column" },
          column.map((node) => {
            const layer = overview.layers[node.k];
            const e = nodeElement(layer, node, {
              atlas,
              probe,
              names: node.k === overview.layers.length - 1 ? overview.class_names : null,
              inputUrl:
                node.k === 0 && tags.images.input
                  ? imageUrl(run, tags.images.input, step, probe)
                  : null,
              foldable: !node.folded && open.has(node.group) && lastOf.get(node.group) === node.k,
              badge: stageBadge.get(node.k),
              label: label(layer.path),
              onPick: (c) => pickUnit(layer.path, c),
              onToggle: (unfold) => toggle(node.group, unfold),
            });
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

  async function showDetail() {
    const wanted = unit;
    const k = overview.layers.findIndex((l) => l.path === wanted.path);
    if (k < 0) {
      setChildren(detailBox, notice(`Layer ${wanted.path} is not in this record.`));
      return;
    }
    const info = overview.layers[k];
    if (info.type === "InputLayer") {
      setChildren(
        detailBox,
        notice("The input: pick a unit of a layer to see how it is computed from it."),
      );
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
      inputs = await Promise.all(
        info.inputs.map((p) => layerRecord(p).then((r) => r.outputs[probe])),
      );
      if (!ctx.alive() || unit !== wanted) return;
      if (rec.input_values) inputs[0] = rec.input_values[probe];
      const spatial = output.shape.length === 3;
      let pos =
        wanted.pos.length === output.shape.length - 1
          ? wanted.pos
          : spatial
            ? peak(output, wanted.channel)
            : [];
      if (!pos.every((p, a) => p >= 0 && p < output.shape[a]))
        pos = spatial ? peak(output, wanted.channel) : [];
      detail = breakdown(info, rec.weights, inputs, output, wanted.channel, pos, overview.top);
      if (spatial)
        mapEl = positionPicker(channelMap(output, wanted.channel), scale, pos, (p) =>
          pickUnit(info.path, wanted.channel, p),
        );
    } else {
      const i = info.channels.indexOf(wanted.channel);
      const logged = i >= 0 ? rec.units?.[probe]?.[i] : null;
      if (!logged) {
        setChildren(
          detailBox,
          notice(`No unit of ${info.path} was logged for channel ${wanted.channel}.`),
        );
        return;
      }
      detail = fromLogged(logged);
      mapEl = thumbPanel(atlas, info, wanted.channel, detail.position);
    }
    const inputMap = (path, ch, rows, cols) => {
      if (!inputs[0] || path !== info.inputs[0] || !rows || inputs[0].shape.length !== 3)
        return null;
      return windowMap(channelMap(inputs[0], ch), rows, cols);
    };
    setChildren(
      detailBox,
      h(
        "div",
        { class: "row" },
        mapEl,
        renderDetail(detail, { info, classNames: overview.class_names, inputMap }),
      ),
    );
    el.dataset.unit = `${info.path}|${detail.channel}|${detail.position.join(",")}`;
    const terms = detail.terms && !Array.isArray(detail.terms) ? detail.terms : null;
    unitLinks = {
      path: info.path,
      input: terms ? terms.input : null,
      channels: terms ? terms.channels : [],
    };
    markSelection();
  }

  let first = true;

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
    const className = (c) => (overview.class_names || [])[c] ?? `class ${c}`;
    prediction.textContent = p
      ? "Prediction: " +
        p.classes
          .slice(0, 3)
          .map((c, j) => `${className(c)} ${(100 * p.probabilities[j]).toFixed(1)}%`)
          .join(", ")
      : "";
    renderGraph();
    if (first && unit) {
      first = false;
      const k = overview.layers.findIndex((l) => l.path === unit.path);
      nodeEls.get(k)?.scrollIntoView({ block: "nearest", inline: "center" });
    }
    el.dataset.step = String(s);
    if (unit) await showDetail();
  }

  const picker = probePicker(ctx, nProbes, probe, (i) =>
    tags.images.input
      ? h("img", {
          class: "thumb",
          alt: `probe ${i}`,
          src: imageUrl(run, tags.images.input, step, i),
        })
      : null,
  );
  const folds = segmented("Fold", LEVELS, level, (v) => ctx.go({ fold: v, open: null }), {
    key: "fold",
  });
  const play = stepper(steps, step, (s) => show(s).catch(() => {}), {});
  const legend = h(
    "p",
    { class: "meta net-legend" },
    h("span", { class: "net-swatch neg" }),
    " negative ",
    h("span", { class: "net-swatch zero" }),
    " zero ",
    h("span", { class: "net-swatch pos" }),
    " positive — each layer scaled to its largest |value| for this probe. Click a channel to see how one unit is computed.",
    prefix
      ? ` Layers inside ${prefix.slice(0, -1)} are named without “${prefix}” (hover a name ` +
          "for its full path)."
      : "",
  );
  el.append(
    h(
      "p",
      { class: "lead" },
      "What every layer computes for one image (after CNN Explainer): layers as columns, one thumbnail per channel, the graph's edges; click a channel, then a position, to follow the arithmetic.",
    ),
    h("div", { class: "controls" }, control("Probe", picker, "div"), folds),
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
