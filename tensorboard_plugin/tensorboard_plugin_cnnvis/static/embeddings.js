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

/** Maps points into the canvas, one scale for both axes so the layout is not distorted. */
function layout(points) {
  const xs = points.map((p) => p[0]).filter(Number.isFinite);
  const ys = points.map((p) => p[1]).filter(Number.isFinite);
  if (!xs.length) return points.map(() => [WIDTH / 2, HEIGHT / 2]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const scale = Math.min((WIDTH - 2 * PAD) / (x1 - x0 || 1), (HEIGHT - 2 * PAD) / (y1 - y0 || 1));
  const ox = (WIDTH - (x1 - x0) * scale) / 2;
  const oy = (HEIGHT - (y1 - y0) * scale) / 2;
  return points.map(([x, y]) =>
    Number.isFinite(x) && Number.isFinite(y)
      ? [ox + (x - x0) * scale, HEIGHT - (oy + (y - y0) * scale)]
      : [NaN, NaN],
  );
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
  let frame = null;
  let sprite = null;
  let hovered = -1;

  function colours() {
    const labels = payload.labels || [];
    const preds = payload.predictions || [];
    return shown.map((_, i) => classColor(colorBy === "class" ? labels[i] : preds[i] ?? labels[i]));
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
      g.beginPath();
      g.arc(x, y, RADIUS, 0, 2 * Math.PI);
      g.fillStyle = cols[i];
      g.globalAlpha = 0.85;
      g.fill();
      g.globalAlpha = 1;
      if (colorBy === "prediction" && preds[i] !== undefined && preds[i] !== labels[i]) {
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
    const target = layout(p.points || []);
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
      ),
    );
    tooltip.hidden = false;
    tooltip.dataset.index = String(best);
    tooltip.style.left = `${Math.min(shown[best][0] + 12, WIDTH - 150)}px`;
    tooltip.style.top = `${Math.max(shown[best][1] - 40, 0)}px`;
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
