// The detail view of the Network page: how one unit's value comes about (CNN Explainer's
// drill-down), drawn from a breakdown of network_units.js: windows, kernels, products, the sum
// plus the bias, the activation; pooling windows, BatchNorm, merges, Dense and softmax.

import { LUT, byteOf, mapCanvas, num, short } from "./network_maps.js";
import { activated, elementwiseFn } from "./network_activations.js";
import { h } from "./util.js";

/** WCAG relative luminance of an sRGB colour (0 black .. 1 white). */
function luminance(rgb) {
  const [r, g, b] = rgb.map((c) => {
    const v = c / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

/** Black or white, whichever contrasts more with `rgb` (at least 4.58:1 on any colour). */
export function textOn(rgb) {
  const l = luminance(rgb);
  return (l + 0.05) / 0.05 >= 1.05 / (l + 0.05) ? "#000" : "#fff";
}

function cellStyle(value, scale) {
  const rgb = LUT[Number.isFinite(value) ? byteOf(value, scale) : 128];
  return { background: `rgb(${rgb.join(",")})`, color: textOn(rgb) };
}

/** A kh x kw grid of numbers, coloured on the diverging scale of its own largest |value|. */
function grid(values, [rows, cols], cls) {
  const finite = values.filter(Number.isFinite);
  const scale = Math.max(0, ...finite.map(Math.abs));
  const body = [];
  for (let r = 0; r < rows; r += 1) {
    body.push(
      h(
        "tr",
        null,
        values
          .slice(r * cols, (r + 1) * cols)
          .map((v) => h("td", { style: cellStyle(v, scale), title: String(v) }, short(v))),
      ),
    );
  }
  return h("table", { class: `net-grid ${cls}` }, h("tbody", null, body));
}

function op(symbol) {
  return h("span", { class: "net-op" }, symbol);
}

function checkLine(detail, computed, what) {
  const ok =
    computed !== null && Math.abs(computed - detail.value) <= 1e-4 * (1 + Math.abs(detail.value));
  return h(
    "p",
    { class: "net-result" },
    `${what} = `,
    h("strong", { class: "unit-computed" }, num(computed)),
    "; logged activation ",
    h("strong", { class: "unit-value" }, num(detail.value)),
    " ",
    h(
      "span",
      { class: ok ? "unit-check good" : "unit-check bad", title: ok ? "equal to 1e-4" : "differs" },
      ok ? "✓ equal" : "✗ differs",
    ),
  );
}

function activationLine(detail) {
  const f = activated(detail);
  const name = detail.activation || "linear";
  return checkLine(detail, f, `${name}(${num(detail.pre_activation)})`);
}

function sumLine(detail, shown, what) {
  const parts = [`Σ ${what} `, num(shown)];
  if (detail.rest)
    parts.push(` + ${detail.rest.count} smaller terms summed ${num(detail.rest.sum)}`);
  parts.push(` + bias ${num(detail.bias)} = `);
  return h(
    "p",
    { class: "net-sum" },
    parts,
    h("strong", { class: "unit-sum" }, num(detail.pre_activation)),
  );
}

function convView(detail, opts) {
  const t = detail.terms;
  const rows = t.channels.map((ch, j) => {
    const products = t.windows[j].map((v, i) => v * t.kernels[j][i]);
    const inputMap = opts.inputMap ? opts.inputMap(t.input, ch, t.rows, t.cols) : null;
    return h(
      "div",
      { class: "net-term", dataset: { channel: ch } },
      h("div", { class: "net-term-label" }, h("span", null, `channel ${ch}`), inputMap),
      grid(t.windows[j], t.size, "window"),
      op("⊙"),
      grid(t.kernels[j], t.size, "kernel"),
      op("="),
      grid(products, t.size, "products"),
      op("Σ"),
      h("span", { class: "net-term-sum" }, num(t.sums[j])),
    );
  });
  const shown = t.sums.reduce((s, v) => s + v, 0);
  const note = detail.rest
    ? `The ${t.channels.length} input channels that contribute most are shown; the other ${detail.rest.count} are summed.`
    : `Every input channel (${t.channels.length}) is shown.`;
  return [
    h(
      "p",
      { class: "meta" },
      `Input window × kernel slice, per input channel of ${t.input}. ${note}`,
    ),
    h(
      "div",
      { class: "net-terms" },
      h(
        "div",
        { class: "net-term net-term-head" },
        h("span", null, "input channel"),
        h("span", null, "window"),
        h("span"),
        h("span", null, "kernel"),
        h("span"),
        h("span", null, "products"),
        h("span"),
        h("span", null, "sum"),
      ),
      rows,
    ),
    sumLine(detail, shown, `of ${t.channels.length} channel${t.channels.length === 1 ? "" : "s"}`),
    activationLine(detail),
  ];
}

function denseView(detail, opts) {
  const t = detail.terms;
  const rows = t.channels.map((i, j) =>
    h(
      "tr",
      null,
      h("td", null, String(i)),
      h("td", { class: "num" }, num(t.values[j])),
      h("td", { class: "num" }, num(t.weights[j])),
      h("td", { class: "num" }, num(t.sums[j])),
    ),
  );
  const out = [
    h(
      "p",
      { class: "meta" },
      `Input ${t.input}: value × weight for the ${t.channels.length} largest terms${detail.rest ? `; the other ${detail.rest.count} are summed` : ""}.`,
    ),
    h(
      "table",
      { class: "data net-dense" },
      h(
        "thead",
        null,
        h(
          "tr",
          null,
          ["input", "value", "weight", "product"].map((s) => h("th", null, s)),
        ),
      ),
      h("tbody", null, rows),
    ),
    sumLine(
      detail,
      t.sums.reduce((s, v) => s + v, 0),
      `of ${t.channels.length} products`,
    ),
    activationLine(detail),
  ];
  if (detail.logits) {
    const logits = Array.from(detail.logits);
    const m = Math.max(...logits);
    const e = logits.map((z) => Math.exp(z - m));
    const total = e.reduce((s, v) => s + v, 0);
    const names = opts.classNames || [];
    out.push(
      h("p", { class: "meta" }, "Softmax: every class's logit, and its probability e^z / Σ e^z."),
      h(
        "table",
        { class: "data net-softmax" },
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["class", "logit", "probability"].map((s) => h("th", null, s)),
          ),
        ),
        h(
          "tbody",
          null,
          logits.map((z, c) =>
            h(
              "tr",
              { class: c === detail.channel ? "selected" : null },
              h("td", null, names[c] ?? String(c)),
              h("td", { class: "num" }, num(z)),
              h("td", { class: "num" }, num(e[c] / total)),
            ),
          ),
        ),
      ),
    );
  }
  return out;
}

function poolView(detail) {
  const how = detail.op.startsWith("max") ? "max" : "mean";
  return [
    h(
      "p",
      { class: "meta" },
      `The ${detail.size.join("×")} window of the same channel in ${detail.input}; padding is skipped.`,
    ),
    h(
      "div",
      { class: "net-terms" },
      h("div", { class: "net-term" }, grid(detail.window, detail.size, "window")),
    ),
    checkLine(detail, detail.result, `${how} of the window`),
  ];
}

function globalView(detail, opts) {
  const how = detail.op.includes("max") ? "max" : "mean";
  const map = detail.map;
  const scale = map ? Math.max(0, ...Array.from(map.values).map(Math.abs)) : 0;
  return [
    h(
      "p",
      { class: "meta" },
      `The whole ${detail.size.join("×")} map of channel ${detail.channel} in ${detail.input}.`,
    ),
    map ? mapCanvas(map, scale, Math.max(1, Math.floor(160 / Math.max(map.h, map.w)))) : null,
    checkLine(detail, detail.result, `${how} over the map`),
  ];
}

function batchNormView(detail) {
  return [
    h(
      "p",
      { class: "meta" },
      `Normalises ${detail.input} with the moving statistics of training: γ · (x − μ) / √(σ² + ε) + β.`,
    ),
    h(
      "p",
      { class: "net-sum" },
      `${num(detail.gamma)} · (${num(detail.x)} − ${num(detail.mean)}) / √(${num(detail.variance)} + ${num(detail.epsilon)}) + ${num(detail.beta)}`,
    ),
    checkLine(detail, detail.result, "result"),
  ];
}

function mergeView(detail) {
  return [
    h("p", { class: "meta" }, `The ${detail.op} of the inputs at the same position and channel.`),
    h(
      "table",
      { class: "data" },
      h(
        "tbody",
        null,
        detail.terms.map((t) =>
          h("tr", null, h("td", null, t.input), h("td", { class: "num" }, num(t.value))),
        ),
      ),
    ),
    checkLine(detail, detail.result, detail.op),
  ];
}

function otherView(detail, info) {
  if (detail.op === "concatenate") {
    return [
      h(
        "p",
        { class: "meta" },
        `Channel ${detail.channel} of ${detail.input}, stacked after the channels before it.`,
      ),
      checkLine(detail, detail.result, "copied value"),
    ];
  }
  const fn = elementwiseFn(info.type, info.config || {});
  if (detail.x !== undefined && fn)
    return [
      h("p", { class: "meta" }, `Applied to the value of ${detail.input} at the same position.`),
      checkLine(detail, fn(detail.x), `f(${num(detail.x)})`),
    ];
  if (detail.x !== undefined)
    return [
      h(
        "p",
        { class: "meta" },
        `Input ${detail.input} here: ${num(detail.x)}; output: ${num(detail.value)}.`,
      ),
    ];
  return [h("p", { class: "meta" }, `A ${info.type} layer: output ${num(detail.value)}.`)];
}

/**
 * The detail view of a breakdown. `opts`: {info (the layer's overview entry), classNames,
 * inputMap(path, channel, rows, cols) -> element or null (full mode: the input channel with
 * the window marked)}.
 */
export function renderDetail(detail, opts) {
  const pos = detail.position.length ? ` · position (${detail.position.join(", ")})` : "";
  let body;
  if (detail.op === "convolution") body = convView(detail, opts);
  else if (detail.op === "dense") body = denseView(detail, opts);
  else if (detail.op.endsWith(" pooling") && !detail.op.startsWith("global"))
    body = poolView(detail);
  else if (detail.op.startsWith("global")) body = globalView(detail, opts);
  else if (detail.op === "batch normalization") body = batchNormView(detail);
  else if (Array.isArray(detail.terms)) body = mergeView(detail);
  else body = otherView(detail, opts.info);
  return h(
    "div",
    {
      class: "unit-detail",
      dataset: {
        path: detail.path,
        channel: detail.channel,
        position: detail.position.join(","),
        value: String(detail.value),
        sum: detail.pre_activation === undefined ? "" : String(detail.pre_activation),
      },
    },
    h(
      "h3",
      null,
      `${detail.path} · ${detail.type} · ${detail.position.length ? "channel" : "unit"} ${detail.channel}${pos}`,
    ),
    body,
  );
}
