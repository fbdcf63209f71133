// Embeddings page: the 2-D layout of a layer's features per epoch (json/embedding/<method>) as an
// animated canvas scatter, coloured by class or prediction, with sprite thumbnails on hover.

import { classColor } from "./charts.js";
import { openPage, stepAt } from "./page.js";
import {
  api,
  fmt,
  getState,
  h,
  imageUrl,
  loadImage,
  pick,
  segmented,
  setChildren,
  setState,
} from "./util.js";

const WIDTH = 640;
const HEIGHT = 440;
const PAD = 18;
const RADIUS = 4;
// Tukey's outer fences: values beyond the quartiles by more than FENCE interquartile ranges are
// far out, even for skewed clouds, and do not set the axis limits.
const FENCE = 3;
// A side of an axis with such values beyond it gets this fraction of the range as a margin.
const WIDEN = 0.05;
// Points outside the plot are drawn this far inside the canvas border, with an outward arrow.
const EDGE = RADIUS + 8;

/** The `q`-quantile (0..1) of sorted values, interpolated between neighbours. */
function quantile(sorted, q) {
  const at = (sorted.length - 1) * q;
  const i = Math.floor(at);
  const next = sorted[Math.min(i + 1, sorted.length - 1)];
  return sorted[i] + (next - sorted[i]) * (at - i);
}

/**
 * The limits of one axis: the extent of the values inside Tukey's outer fences, so that a few
 * far-off points (common in PCA) do not squeeze the others into a corner. A side beyond which
 * values lie is widened by WIDEN of the range; without such values this is min..max.
 */
function axisLimits(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const [q1, q3] = [quantile(sorted, 0.25), quantile(sorted, 0.75)];
  const reach = FENCE * (q3 - q1);
  const inside = reach > 0 ? sorted.filter((v) => v >= q1 - reach && v <= q3 + reach) : sorted;
  let [lo, hi] = [inside[0], inside[inside.length - 1]];
  const margin = WIDEN * (hi - lo);
  if (sorted[0] < lo) lo -= margin;
  if (sorted[sorted.length - 1] > hi) hi += margin;
  return [lo, hi];
}

const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);

/**
 * Maps points into the canvas, one scale for both axes so the layout is not distorted, the axis
 * limits from axisLimits. Returns {positions, pinned}: a point that falls outside the canvas is
 * placed EDGE inside its border and pinned[i] is the angle towards its true place (else null).
 */
function layout(points) {
  const finite = ([x, y]) => Number.isFinite(x) && Number.isFinite(y);
  const shown = points.filter(finite);
  const pinned = points.map(() => null);
  if (!shown.length) return { positions: points.map(() => [WIDTH / 2, HEIGHT / 2]), pinned };
  const [x0, x1] = axisLimits(shown.map((p) => p[0]));
  const [y0, y1] = axisLimits(shown.map((p) => p[1]));
  const scale = Math.min((WIDTH - 2 * PAD) / (x1 - x0 || 1), (HEIGHT - 2 * PAD) / (y1 - y0 || 1));
  const ox = (WIDTH - (x1 - x0) * scale) / 2;
  const oy = (HEIGHT - (y1 - y0) * scale) / 2;
  const positions = points.map((p, i) => {
    if (!finite(p)) return [NaN, NaN];
    const [x, y] = [ox + (p[0] - x0) * scale, HEIGHT - (oy + (p[1] - y0) * scale)];
    const at = [clamp(x, EDGE, WIDTH - EDGE), clamp(y, EDGE, HEIGHT - EDGE)];
    if (at[0] !== x || at[1] !== y) pinned[i] = Math.atan2(y - at[1], x - at[0]);
    return at;
  });
  return { positions, pinned };
}

export async function mount(el, ctx) {
  const { run } = ctx;
  const page = await openPage(el, ctx, {
    kind: "embedding",
    from: "json",
    key: "emb",
    empty: "has embedding images but no json/embedding records.",
  });
  if (!page) return null;
  const { tags, name: method, tag, steps } = page;
  let step = page.step;
  let colorBy = pick(["class", "prediction"], getState("color"), "class");
  setState({ emb: method, color: colorBy, step });

  const dpr = window.devicePixelRatio || 1;
  const canvas = h("canvas", {
    width: WIDTH * dpr,
    height: HEIGHT * dpr,
    class: "scatter",
    style: { width: `${WIDTH}px`, height: `${HEIGHT}px` },
    "aria-label": "embedding scatter plot",
  });
  const g = canvas.getContext("2d");
  g.scale(dpr, dpr);
  const tooltip = h("div", { class: "tooltip", hidden: true });
  const legend = h("div", { class: "legend-list" });
  const scores = h("p", { class: "meta" });
  let payload = null;
  let shown = [];
  let pinned = [];
  let frame = null;
  let sprite = null;
  let hovered = -1;

  function colours() {
    const labels = payload.labels || [];
    const preds = payload.predictions || [];
    return shown.map((_, i) => classColor(colorBy === "class" ? labels[i] : preds[i] ?? labels[i]));
  }

  /** A point outside the plot, at its edge (the path is its circle): hollow, arrow outwards. */
  function drawPinned(x, y, angle, colour) {
    g.fillStyle = "#ffffff";
    g.fill();
    g.lineWidth = 2;
    g.strokeStyle = colour;
    g.stroke();
    const [dx, dy] = [Math.cos(angle), Math.sin(angle)];
    const at = (along, across) => [x + dx * along - dy * across, y + dy * along + dx * across];
    g.beginPath();
    g.moveTo(...at(RADIUS + 7, 0));
    g.lineTo(...at(RADIUS + 2, 3.5));
    g.lineTo(...at(RADIUS + 2, -3.5));
    g.closePath();
    g.fillStyle = colour;
    g.fill();
  }

  function draw(positions) {
    g.clearRect(0, 0, WIDTH, HEIGHT);
    g.fillStyle = "#ffffff";
    g.fillRect(0, 0, WIDTH, HEIGHT);
    const cols = colours();
    const labels = payload.labels || [];
    const preds = payload.predictions || [];
    let count = 0;
    positions.forEach(([x, y], i) => {
      if (!Number.isFinite(x)) return;
      const angle = pinned[i] ?? null;
      g.beginPath();
      g.arc(x, y, RADIUS, 0, 2 * Math.PI);
      if (angle === null) {
        g.fillStyle = cols[i];
        g.globalAlpha = 0.85;
        g.fill();
        g.globalAlpha = 1;
      } else {
        drawPinned(x, y, angle, cols[i]);
      }
      if (colorBy === "prediction" && preds[i] !== undefined && preds[i] !== labels[i]) {
        if (angle !== null) {
          g.beginPath();
          g.arc(x, y, RADIUS + 2, 0, 2 * Math.PI);
        }
        g.lineWidth = 1.5;
        g.strokeStyle = "#111";
        g.stroke();
      }
      count += 1;
    });
    const hp = positions[hovered];
    if (hp && Number.isFinite(hp[0])) {
      g.beginPath();
      g.arc(hp[0], hp[1], RADIUS + 3, 0, 2 * Math.PI);
      g.lineWidth = 2;
      g.strokeStyle = "#111";
      g.stroke();
    }
    canvas.dataset.points = String(count);
    if (positions.length && Number.isFinite(positions[0][0])) {
      canvas.dataset.point0 = `${positions[0][0].toFixed(1)},${positions[0][1].toFixed(1)}`;
    }
    el.dataset.points = String(count);
  }

  function animateTo(target) {
    if (frame) cancelAnimationFrame(frame);
    const start = shown;
    if (start.length !== target.length) {
      shown = target;
      draw(shown);
      return;
    }
    const t0 = performance.now();
    const tick = (now) => {
      const t = Math.min((now - t0) / 450, 1);
      const e = t * t * (3 - 2 * t);
      shown = start.map(([x, y], i) => [x + (target[i][0] - x) * e, y + (target[i][1] - y) * e]);
      draw(shown);
      frame = t < 1 ? requestAnimationFrame(tick) : null;
    };
    frame = requestAnimationFrame(tick);
  }

  function renderLegend() {
    const names = payload.class_names || [];
    const used = [...new Set([...(payload.labels || []), ...(payload.predictions || [])])].sort((a, b) => a - b);
    const n = pinned.filter((a) => a !== null).length;
    const outside = `hollow, arrow: ${n} point${n === 1 ? "" : "s"} beyond the plot, shown at its edge`;
    setChildren(
      legend,
      used.map((c) =>
        h(
          "span",
          { class: "legend-item" },
          h("span", { class: "swatch", style: { background: classColor(c) } }),
          names[c] !== undefined ? String(names[c]) : `class ${c}`,
        ),
      ),
      colorBy === "prediction" ? h("span", { class: "muted" }, "dark ring: misclassified") : null,
      n ? h("span", { class: "muted" }, outside) : null,
    );
  }

  async function loadSprite(s) {
    const info = payload.sprite;
    sprite = null;
    if (!info || !Object.values(tags.images).includes(info.tag)) return;
    const at = await stepAt(run, info.tag, s);
    if (at === null) return;
    const img = await loadImage(imageUrl(run, info.tag, at, 0));
    if (step === s) sprite = { img, info };
  }

  async function show(s) {
    step = s;
    const p = await api("data", { run, tag, step: s });
    if (!ctx.alive() || step !== s) return;
    payload = p;
    const { positions: target, pinned: out } = layout(p.points || []);
    pinned = out;
    canvas.dataset.pinned = out.flatMap((a, i) => (a === null ? [] : [i])).join(",");
    if (!shown.length) {
      shown = target;
      draw(shown);
    } else {
      animateTo(target);
    }
    renderLegend();
    const sc = p.scores || {};
    const bits = [`${(p.points || []).length} points`, `layer ${p.layer}`, `epoch ${s}`];
    for (const [k, v] of Object.entries(sc)) bits.push(`${k.replaceAll("_", " ")} ${fmt(v)}`);
    scores.textContent = bits.join(" · ");
    loadSprite(s).catch(() => {});
  }

  function hover(event) {
    if (!payload || !shown.length) return;
    const rect = canvas.getBoundingClientRect();
    const mx = ((event.clientX - rect.left) * WIDTH) / rect.width;
    const my = ((event.clientY - rect.top) * HEIGHT) / rect.height;
    let best = -1;
    let bestD = 10 * 10;
    shown.forEach(([x, y], i) => {
      const d = (x - mx) ** 2 + (y - my) ** 2;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    });
    if (best !== hovered) {
      hovered = best;
      draw(shown);
    }
    if (best < 0) {
      tooltip.hidden = true;
      return;
    }
    const names = payload.class_names || [];
    const label = payload.labels?.[best];
    const pred = payload.predictions?.[best];
    const name = (c) => (names[c] !== undefined ? String(names[c]) : `class ${c}`);
    const [px, py] = payload.points?.[best] || [];
    const thumb = h("canvas", { width: 64, height: 64, class: "thumb-canvas" });
    if (sprite) {
      const [sh, sw] = sprite.info.single_image_dim || [0, 0];
      const perRow = sprite.info.per_row || 1;
      const sx = (best % perRow) * sw;
      const sy = Math.floor(best / perRow) * sh;
      const tg = thumb.getContext("2d");
      tg.imageSmoothingEnabled = false;
      if (sh && sw && sy + sh <= sprite.img.naturalHeight) tg.drawImage(sprite.img, sx, sy, sw, sh, 0, 0, 64, 64);
    }
    setChildren(
      tooltip,
      sprite ? thumb : null,
      h(
        "div",
        null,
        h("div", null, `#${best}`),
        h("div", null, `label: ${name(label)}`),
        pred !== undefined ? h("div", null, `predicted: ${name(pred)}`) : null,
        h("div", null, `at (${fmt(px)}, ${fmt(py)})`),
        pinned[best] !== null ? h("div", null, "beyond the plot, shown at its edge") : null,
      ),
    );
    tooltip.hidden = false;
    tooltip.dataset.index = String(best);
    // Right of the point, or left of it where the canvas ends (points at its edge included).
    const [x, y] = shown[best];
    const w = tooltip.offsetWidth;
    tooltip.style.left = `${x + 12 + w <= WIDTH ? x + 12 : Math.max(x - 12 - w, 0)}px`;
    tooltip.style.top = `${Math.max(y - 40, 0)}px`;
  }
  canvas.addEventListener("mousemove", hover);
  canvas.addEventListener("mouseleave", () => {
    tooltip.hidden = true;
    hovered = -1;
    if (payload) draw(shown);
  });

  const play = page.stepper((s) => show(s).catch(() => {}), { interval: 900 });
  const colorButtons = segmented(
    "Colour by",
    ["class", "prediction"],
    colorBy,
    (c) => {
      colorBy = c;
      setState({ color: c });
      draw(shown);
      renderLegend();
    },
    { key: "color" },
  );
  el.append(
    h("p", { class: "lead" }, "How the layer's feature space organises the data: classes should separate as training goes on. Hover a point for its image."),
    h(
      "div",
      { class: "controls" },
      page.picker("Method", "cnnvis-emb-method"),
      colorButtons,
      play.el,
    ),
    scores,
    h("div", { class: "scatter-wrap" }, canvas, tooltip),
    legend,
  );
  el.dataset.method = method;
  el.dataset.steps = String(steps.length);
  await show(step);
  return () => {
    play.stop();
    if (frame) cancelAnimationFrame(frame);
  };
}
