// The arithmetic behind one unit of the Network page (the same breakdown as
// keras_cnnvis/network/units.py): decoded float arrays, input windows, kernel slices, sums and
// the bias (the activation is in network_activations.js). Units-mode records carry the breakdown computed in Python; full-mode
// records carry every value and this module computes the breakdown of any unit in the browser.

/** Decodes `{dtype: "float32", shape, data: base64}` into {shape, data: Float32Array}. */
export function decodeArray(value) {
  const bytes = Uint8Array.from(atob(value.data), (c) => c.charCodeAt(0));
  return { shape: value.shape, data: new Float32Array(bytes.buffer) };
}

/** `value` with every encoded array inside decoded (see decodeArray). */
export function decodeAll(value) {
  if (Array.isArray(value)) return value.map(decodeAll);
  if (value && typeof value === "object") {
    if (value.dtype === "float32" && typeof value.data === "string") return decodeArray(value);
    const out = {};
    for (const [k, v] of Object.entries(value)) out[k] = decodeAll(v);
    return out;
  }
  return value;
}

/** Row-major offset of `index` in an array of `shape`, reading broadcast axes (size 1) at 0. */
function offset(shape, index) {
  let off = 0;
  for (let a = 0; a < shape.length; a += 1) off = off * shape[a] + (shape[a] === 1 ? 0 : index[a]);
  return off;
}

/** The value of a decoded array at `index`. */
export function at(arr, ...index) {
  return arr.data[offset(arr.shape, index)];
}

/** One channel of an (H, W, C) array as {h, w, values: Float64Array}. */
export function channelMap(arr, channel) {
  const [h, w, c] = arr.shape;
  const values = new Float64Array(h * w);
  for (let i = 0; i < h * w; i += 1) values[i] = arr.data[i * c + channel];
  return { h, w, values };
}

/** Input indices read by output index `o` along one axis (TensorFlow's "same" padding). */
export function windowRows(o, size, kernel, stride, dilation, padding) {
  let pad = 0;
  if (padding === "same") {
    const out = Math.ceil(size / stride);
    pad = Math.floor(Math.max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0) / 2);
  }
  return Array.from({ length: kernel }, (_, i) => o * stride - pad + i * dilation);
}

/** The (kh, kw) window of input channel `ch` at output (y, x); padding reads `fill`. */
function windowOf(x, ch, rows, cols, fill) {
  const [h, w] = x.shape;
  const out = [];
  for (const r of rows) {
    for (const c of cols) out.push(r >= 0 && r < h && c >= 0 && c < w ? at(x, r, c, ch) : fill);
  }
  return out;
}

function topTerms(sums, top) {
  const order = [...sums.keys()].sort((a, b) => Math.abs(sums[b]) - Math.abs(sums[a]) || a - b);
  if (order.length <= top) return { keep: order, rest: null };
  const rest = order.slice(top);
  return {
    keep: order.slice(0, top),
    rest: { count: rest.length, sum: rest.reduce((s, i) => s + sums[i], 0) },
  };
}

function weighted(info, weights, channel, sums, terms, rest, op) {
  const useBias = info.config.use_bias !== false && weights.bias;
  const bias = useBias ? weights.bias.data[channel] : 0;
  const z = sums.reduce((s, v) => s + v, 0) + bias;
  return {
    op,
    terms,
    rest,
    bias,
    pre_activation: z,
    activation: info.config.activation || "linear",
  };
}

function conv(info, weights, x, channel, [y0, x0], top) {
  const cfg = info.config;
  const cin = x.shape[2];
  let channels;
  let kernelAt;
  let kh;
  let kw;
  if (info.type === "DepthwiseConv2D") {
    const k = weights.kernel;
    [kh, kw] = k.shape;
    const dm = k.shape[3];
    channels = [Math.floor(channel / dm)];
    kernelAt = (i, a, b) => at(k, a, b, i, channel % dm);
  } else if (info.type === "SeparableConv2D") {
    const dw = weights.depthwise_kernel;
    const pw = weights.pointwise_kernel;
    [kh, kw] = dw.shape;
    const dm = dw.shape[3];
    channels = [...Array(cin).keys()];
    kernelAt = (i, a, b) => {
      let s = 0;
      for (let j = 0; j < dm; j += 1) s += at(dw, a, b, i, j) * at(pw, 0, 0, i * dm + j, channel);
      return s;
    };
  } else {
    const k = weights.kernel;
    [kh, kw] = k.shape;
    const groups = cfg.groups || 1;
    const perGroup = cin / groups;
    const g = Math.floor(channel / (cfg.filters / groups));
    channels = Array.from({ length: perGroup }, (_, i) => g * perGroup + i);
    kernelAt = (i, a, b) => at(k, a, b, i - g * perGroup, channel);
  }
  const [sh, sw] = cfg.strides;
  const [dh, dw] = cfg.dilation_rate;
  const rows = windowRows(y0, x.shape[0], kh, sh, dh, cfg.padding);
  const cols = windowRows(x0, x.shape[1], kw, sw, dw, cfg.padding);
  const windows = [];
  const kernels = [];
  const sums = channels.map((i) => {
    const win = windowOf(x, i, rows, cols, 0);
    const ker = [];
    for (let a = 0; a < kh; a += 1) for (let b = 0; b < kw; b += 1) ker.push(kernelAt(i, a, b));
    windows.push(win);
    kernels.push(ker);
    return win.reduce((s, v, j) => s + v * ker[j], 0);
  });
  const { keep, rest } = topTerms(sums, top);
  const terms = {
    input: info.inputs[0],
    channels: keep.map((j) => channels[j]),
    windows: keep.map((j) => windows[j]),
    kernels: keep.map((j) => kernels[j]),
    sums: keep.map((j) => sums[j]),
    size: [kh, kw],
    rows,
    cols,
  };
  return weighted(info, weights, channel, sums, terms, rest, "convolution");
}

function dense(info, weights, x, channel, pos, top) {
  const k = weights.kernel;
  const n = k.shape[0];
  const base = pos.length ? offset(x.shape, [...pos, 0]) : 0;
  const values = Array.from({ length: n }, (_, i) => x.data[base + i]);
  const sums = values.map((v, i) => v * at(k, i, channel));
  const { keep, rest } = topTerms(sums, top);
  const terms = {
    input: info.inputs[0],
    channels: keep,
    values: keep.map((i) => values[i]),
    weights: keep.map((i) => at(k, i, channel)),
    sums: keep.map((i) => sums[i]),
  };
  const detail = weighted(info, weights, channel, sums, terms, rest, "dense");
  if (detail.activation === "softmax") {
    detail.logits = Array.from({ length: k.shape[1] }, (_, c) => {
      const b = weights.bias ? weights.bias.data[c] : 0;
      return values.reduce((s, v, i) => s + v * at(k, i, c), b);
    });
  }
  return detail;
}

const POOLS = { MaxPooling2D: "max", AveragePooling2D: "mean" };
const GLOBAL_POOLS = { GlobalMaxPooling2D: "max", GlobalAveragePooling2D: "mean" };
const MERGES = {
  Add: "sum",
  Subtract: "difference",
  Multiply: "product",
  Average: "mean",
  Maximum: "max",
  Minimum: "min",
};

function reduce(values, how) {
  const v = values.filter((a) => !Number.isNaN(a));
  if (how === "max") return Math.max(...v);
  if (how === "min") return Math.min(...v);
  if (how === "product") return v.reduce((s, a) => s * a, 1);
  const sum = v.reduce((s, a) => s + a, 0);
  return how === "mean" ? sum / v.length : sum;
}

function pool(info, x, channel, [y0, x0]) {
  const how = POOLS[info.type];
  const cfg = info.config;
  const [ph, pw] = cfg.pool_size;
  const rows = windowRows(y0, x.shape[0], ph, cfg.strides[0], 1, cfg.padding);
  const cols = windowRows(x0, x.shape[1], pw, cfg.strides[1], 1, cfg.padding);
  const window = windowOf(x, channel, rows, cols, how === "max" ? -Infinity : NaN);
  return {
    op: `${how} pooling`,
    input: info.inputs[0],
    window,
    size: [ph, pw],
    rows,
    cols,
    result: reduce(window, how),
  };
}

/**
 * The breakdown of one unit of a full-mode record (see keras_cnnvis.network.unit_breakdown).
 * `info` is the layer's overview entry, `weights` its decoded weights, `inputs` the decoded
 * outputs of its inputs for the probe (`inputs[0]` replaced by the logged input value when the
 * record has one), `output` its own output; `pos` is [y, x] or [] for a vector.
 */
export function breakdown(info, weights, inputs, output, channel, pos, top) {
  const value = at(output, ...pos, channel);
  const head = { path: info.path, type: info.type, channel, position: pos, value };
  const x = inputs[0];
  const t = info.type;
  let detail;
  if ((t === "Conv2D" || t === "DepthwiseConv2D" || t === "SeparableConv2D") && pos.length === 2) {
    detail = conv(info, weights, x, channel, pos, top);
  } else if (t === "Dense") {
    detail = dense(info, weights, x, channel, pos, top);
  } else if (POOLS[t]) {
    detail = pool(info, x, channel, pos);
  } else if (GLOBAL_POOLS[t]) {
    const map = channelMap(x, channel);
    const how = GLOBAL_POOLS[t];
    detail = {
      op: `global ${how} pooling`,
      input: info.inputs[0],
      map,
      size: [map.h, map.w],
      result: reduce([...map.values], how),
    };
  } else if (t === "BatchNormalization") {
    const g = weights.gamma ? weights.gamma.data[channel] : 1;
    const b = weights.beta ? weights.beta.data[channel] : 0;
    const mean = weights.moving_mean.data[channel];
    const variance = weights.moving_variance.data[channel];
    const epsilon = info.config.epsilon ?? 1e-3;
    const xv = at(x, ...pos, channel);
    const result = (g * (xv - mean)) / Math.sqrt(variance + epsilon) + b;
    detail = {
      op: "batch normalization",
      input: info.inputs[0],
      x: xv,
      gamma: g,
      beta: b,
      mean,
      variance,
      epsilon,
      result,
    };
  } else if (MERGES[t] && inputs.length > 1) {
    const how = MERGES[t];
    const terms = inputs.map((arr, i) => ({
      input: info.inputs[i],
      value: at(arr, ...pos, channel),
    }));
    const values = terms.map((term) => term.value);
    const result = how === "difference" ? values[0] - values[1] : reduce(values, how);
    detail = { op: how, terms, result };
  } else if (t === "Concatenate") {
    let start = 0;
    detail = { op: "concatenate" };
    inputs.forEach((arr, i) => {
      const width = arr.shape[arr.shape.length - 1];
      if (channel >= start && channel < start + width) {
        Object.assign(detail, {
          input: info.inputs[i],
          channel: channel - start,
          result: at(arr, ...pos, channel - start),
        });
      }
      start += width;
    });
  } else {
    detail = { op: "elementwise", input: info.inputs[0] ?? null };
    if (x && x.shape.join() === output.shape.join()) detail.x = at(x, ...pos, channel);
  }
  return { ...head, ...detail };
}

function rows2d(arr) {
  if (!arr || !arr.shape) return arr;
  const per = arr.shape.slice(1).reduce((a, b) => a * b, 1);
  return Array.from({ length: arr.shape[0] }, (_, i) =>
    Array.from(arr.data.subarray(i * per, (i + 1) * per)),
  );
}

/** A breakdown logged by Python (units mode, arrays decoded) in the shape `breakdown` returns. */
export function fromLogged(detail) {
  const out = { ...detail };
  const t = detail.terms;
  if (t && !Array.isArray(t)) {
    out.terms = { ...t, sums: Array.from(t.sums.data) };
    if (t.windows) {
      Object.assign(out.terms, {
        windows: rows2d(t.windows),
        kernels: rows2d(t.kernels),
        size: t.windows.shape.slice(1),
      });
    } else {
      Object.assign(out.terms, {
        values: Array.from(t.values.data),
        weights: Array.from(t.weights.data),
      });
    }
  }
  if (detail.window && detail.window.shape) {
    Object.assign(out, { window: Array.from(detail.window.data), size: detail.window.shape });
  }
  if (detail.map && detail.map.shape) {
    const [h, w] = detail.map.shape;
    out.map = { h, w, values: Float64Array.from(detail.map.data) };
  }
  if (detail.logits && detail.logits.data) out.logits = Array.from(detail.logits.data);
  return out;
}

/** The position [y, x] of the largest |value| of one channel of an (H, W, C) array. */
export function peak(output, channel) {
  const map = channelMap(output, channel);
  let best = 0;
  map.values.forEach((v, i) => {
    if (Math.abs(v) > Math.abs(map.values[best])) best = i;
  });
  return [Math.floor(best / map.w), best % map.w];
}
