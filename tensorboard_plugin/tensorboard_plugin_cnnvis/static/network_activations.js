// The functions behind a unit's last step on the Network page: Keras activations by name, the
// elementwise layers (ReLU, LeakyReLU, ELU, Activation), and f(z) of a breakdown (softmax over
// its logits).

const SQRT1_2 = Math.SQRT1_2;
function erf(x) {
  // Abramowitz & Stegun 7.1.26 is too coarse; this series/continued fraction pair is ~1e-12.
  const ax = Math.abs(x);
  if (ax < 2.5) {
    let sum = ax;
    let term = ax;
    for (let n = 1; n < 60; n += 1) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = 0;
  for (let n = 60; n >= 1; n -= 1) f = n / 2 / (ax + f);
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  return Math.sign(x) * (1 - erfc);
}

const sigmoid = (z) => 1 / (1 + Math.exp(-z));
const ACTIVATIONS = {
  linear: (z) => z,
  relu: (z) => Math.max(z, 0),
  relu6: (z) => Math.min(Math.max(z, 0), 6),
  sigmoid,
  tanh: Math.tanh,
  swish: (z) => z * sigmoid(z),
  silu: (z) => z * sigmoid(z),
  gelu: (z) => 0.5 * z * (1 + erf(z * SQRT1_2)),
  elu: (z) => (z > 0 ? z : Math.exp(z) - 1),
  selu: (z) => 1.0507009873554805 * (z > 0 ? z : 1.6732632423543772 * (Math.exp(z) - 1)),
  softplus: (z) => Math.log1p(Math.exp(-Math.abs(z))) + Math.max(z, 0),
  softsign: (z) => z / (1 + Math.abs(z)),
  hard_sigmoid: (z) => Math.min(Math.max(z + 3, 0), 6) / 6,
  hard_silu: (z) => (z * Math.min(Math.max(z + 3, 0), 6)) / 6,
  hard_swish: (z) => (z * Math.min(Math.max(z + 3, 0), 6)) / 6,
  exponential: Math.exp,
  mish: (z) => z * Math.tanh(Math.log1p(Math.exp(z))),
};

/** The activation function called `name`, or null when the page does not know it. */
export function activationFn(name) {
  return ACTIVATIONS[name] || null;
}

/** An elementwise layer's function (Activation, ReLU, LeakyReLU, ELU), or null. */
export function elementwiseFn(type, config) {
  if (type === "Activation") return activationFn(config.activation);
  if (type === "ReLU") {
    const max = config.max_value ?? Infinity;
    const slope = config.negative_slope ?? 0;
    const t = config.threshold ?? 0;
    return (z) => Math.min(z >= t ? z : slope * (z - t), max);
  }
  if (type === "LeakyReLU") return (z) => (z >= 0 ? z : (config.negative_slope ?? 0.3) * z);
  if (type === "ELU") return (z) => (z > 0 ? z : (config.alpha ?? 1) * (Math.exp(z) - 1));
  return null;
}

/** f(z) for a breakdown with a pre-activation (softmax over its logits), else null. */
export function activated(detail) {
  if (detail.pre_activation === undefined) return null;
  if (detail.activation === "softmax" && detail.logits) {
    const logits = Array.from(detail.logits.data || detail.logits);
    const m = Math.max(...logits);
    const e = logits.map((z) => Math.exp(z - m));
    return e[detail.channel] / e.reduce((s, v) => s + v, 0);
  }
  const fn = activationFn(detail.activation);
  return fn ? fn(detail.pre_activation) : null;
}
