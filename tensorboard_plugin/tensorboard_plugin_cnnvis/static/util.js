// Shared helpers of the cnnvis dashboard: DOM building (text only, never HTML), the plugin's
// JSON API, URL-hash state and the step control used by every page.

/**
 * Creates an element. Children that are not Nodes become text nodes, so data is never parsed
 * as HTML. Props: "class", "dataset", "style" (object), "on<event>" handlers, other attributes.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style") Object.assign(el.style, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces all children of `el`. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function query(params) {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (Array.isArray(value)) value.forEach((v) => q.append(key, String(v)));
    else if (value !== null && value !== undefined) q.append(key, String(value));
  }
  return q.toString();
}

const cache = new Map();

/** GETs a plugin route (relative to the plugin's base URL) and parses the JSON answer. */
export function api(route, params) {
  const url = `${route}?${query(params)}`;
  if (!cache.has(url)) {
    const promise = fetch(url).then(async (res) => {
      let body = null;
      try {
        body = await res.json();
      } catch (e) {
        body = null;
      }
      if (!res.ok) throw new ApiError(res.status, (body && body.error) || res.statusText);
      return body;
    });
    promise.catch(() => cache.delete(url));
    cache.set(url, promise);
  }
  return cache.get(url);
}

/** Forgets every cached answer (the "Reload" button). */
export function clearCache() {
  cache.clear();
  imageCache.clear();
}

/** URL of image `index` of an image record. */
export function imageUrl(run, tag, step, index = 0) {
  return `image?${query({ run, tag, step, index })}`;
}

const imageCache = new Map();

/** Loads an image once (for canvas drawing and smooth playback); resolves to the element. */
export function loadImage(url) {
  if (!imageCache.has(url)) {
    const promise = new Promise((resolve, reject) => {
      const img = new Image();
      img.decoding = "async";
      img.onload = () => resolve(img);
      img.onerror = () => reject(new Error("Could not load an image."));
      img.src = url;
    });
    promise.catch(() => imageCache.delete(url));
    imageCache.set(url, promise);
  }
  return imageCache.get(url);
}

// URL-hash state ------------------------------------------------------------------------

function hashParams() {
  return new URLSearchParams(window.location.hash.replace(/^#/, ""));
}

/** Reads one key of the view state kept in the iframe's URL hash. */
export function getState(key, fallback = null) {
  const value = hashParams().get(key);
  return value === null ? fallback : value;
}

/** Updates keys of the hash state (null removes a key) without adding history entries. */
export function setState(values) {
  const params = hashParams();
  for (const [key, value] of Object.entries(values)) {
    if (value === null || value === undefined) params.delete(key);
    else params.set(key, String(value));
  }
  // An absolute URL: the entry page has <base href="plugin/cnnvis/">, and a bare "#..." would
  // resolve against that base and change the iframe's path.
  const here = window.location.href.split("#")[0];
  history.replaceState(null, "", `${here}#${params.toString()}`);
}

// Small widgets -------------------------------------------------------------------------

/** A message for a page without data (or after an error). */
export function notice(text, kind = "empty") {
  return h("div", { class: `notice ${kind}`, role: "status" }, text);
}

/** A control with its label: `<tag class="control"><span>label</span>child</tag>`. */
export function control(label, child, tag = "label") {
  return h(tag, { class: "control" }, h("span", null, label), child);
}

/** A labelled <select>; `options` are [value, label] pairs or plain values. */
export function select(label, options, value, onChange, extra = {}) {
  const el = h(
    "select",
    { onchange: (e) => onChange(e.target.value), ...extra },
    options.map((o) => {
      const [v, text] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: String(v) === String(value) }, text);
    }),
  );
  return control(label, el);
}

/**
 * A labelled row of toggle buttons, one per value, `current` pressed. A click presses its
 * button and calls `onPick(value)`. Each button keeps its value in the data attribute `key`.
 */
export function segmented(label, values, current, onPick, { key, text = String } = {}) {
  const press = (button, on) => {
    button.classList.toggle("current", on);
    button.setAttribute("aria-pressed", on ? "true" : "false");
  };
  const group = h(
    "div",
    { class: "segmented", role: "group", "aria-label": label },
    values.map((value) => {
      const button = h(
        "button",
        {
          type: "button",
          dataset: { [key]: value },
          onclick: () => {
            for (const b of group.children) press(b, b === button);
            onPick(value);
          },
        },
        text(value),
      );
      press(button, value === current);
      return button;
    }),
  );
  return control(label, group, "div");
}

/** Sorts names so that "conv2" comes before "conv10" (the closest we get to model order). */
export function naturalSort(names) {
  return [...names].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
}

/** Picks `wanted` (string from the hash) if it is in `values`, else the fallback. */
export function pick(values, wanted, fallback = values[0]) {
  const hit = values.find((v) => String(v) === String(wanted));
  return hit === undefined ? fallback : hit;
}

/** The step of `steps` (sorted) to show for a requested step: equal, else the last one before. */
export function nearestStep(steps, wanted) {
  if (!steps.length) return null;
  const w = Number(wanted);
  if (wanted === null || wanted === undefined || Number.isNaN(w)) return steps[steps.length - 1];
  let best = steps[0];
  for (const s of steps) if (s <= w) best = s;
  return best;
}

/** `n` steps spread evenly over `steps`, always with the first and the last. */
export function spacedSteps(steps, n) {
  if (steps.length <= n) return steps;
  const picked = new Set();
  for (let k = 0; k < n; k++) picked.add(steps[Math.round((k * (steps.length - 1)) / (n - 1))]);
  return steps.filter((s) => picked.has(s));
}

/**
 * A step slider with play/pause. `onChange(step)` fires on every change (also while playing).
 * Returns {el, value(), set(step), stop()}.
 */
export function stepper(steps, initial, onChange, { label = "epoch", interval = 800 } = {}) {
  let index = Math.max(0, steps.indexOf(initial));
  let timer = null;
  const text = h("span", { class: "step-label" });
  const slider = h("input", {
    type: "range",
    min: 0,
    max: Math.max(steps.length - 1, 0),
    value: index,
    "aria-label": label,
    disabled: steps.length < 2,
    oninput: () => go(Number(slider.value), true),
  });
  const button = h("button", { class: "play", type: "button", disabled: steps.length < 2 });
  function show() {
    slider.value = String(index);
    text.textContent = `${label} ${steps[index]} (${index + 1}/${steps.length})`;
    button.textContent = timer ? "❚❚ Pause" : "▶ Play";
    button.setAttribute("aria-pressed", timer ? "true" : "false");
  }
  function go(i, fromUser) {
    if (fromUser && timer) stop();
    index = Math.min(Math.max(i, 0), steps.length - 1);
    show();
    onChange(steps[index]);
  }
  function stop() {
    if (timer) clearInterval(timer);
    timer = null;
    show();
  }
  function play() {
    if (index >= steps.length - 1) go(0, false);
    timer = setInterval(() => {
      if (index >= steps.length - 1) stop();
      else go(index + 1, false);
    }, interval);
    show();
  }
  button.addEventListener("click", () => (timer ? stop() : play()));
  show();
  const el = h("div", { class: "stepper" }, button, slider, text);
  return {
    el,
    value: () => steps[index],
    set: (step) => go(Math.max(0, steps.indexOf(step)), true),
    stop,
  };
}

/** Shows an image scaled by an integer factor so small grids stay crisp and readable. */
export function crispImage(url, { maxWidth = 520, alt = "", onload } = {}) {
  const img = h("img", { class: "crisp", alt, decoding: "async" });
  img.addEventListener("load", () => {
    const w = img.naturalWidth || 1;
    const scale = w <= maxWidth ? Math.floor(maxWidth / w) : maxWidth / w;
    img.style.width = `${Math.round(w * scale)}px`;
    if (onload) onload(img);
  });
  img.src = url;
  return img;
}

/** Calls `fn(entry.target)` once for each element that scrolls into view (lazy loading). */
export function lazy(root = null) {
  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        observer.unobserve(entry.target);
        const fn = entry.target.__onVisible;
        delete entry.target.__onVisible;
        if (fn) fn(entry.target);
      }
    },
    { root, rootMargin: "200px" },
  );
  return {
    watch(el, fn) {
      el.__onVisible = fn;
      observer.observe(el);
    },
    disconnect: () => observer.disconnect(),
  };
}

/** Formats a number for tables: integers as is, floats with 4 significant digits. */
export function fmt(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

/**
 * Formats a number with `digits` significant digits, trailing zeros kept so values of one
 * magnitude line up (0.2322 -> "0.232", 0.04112 -> "0.0411", 2.345e-4 -> "2.35e-4", 1234.5 ->
 * "1235"); a value closer to zero than `zero` reads "≈0" (the exact value belongs in a tooltip).
 */
export function fmtSig(value, digits = 3, zero = 1e-6) {
  if (typeof value !== "number" || !Number.isFinite(value)) return fmt(value);
  const abs = Math.abs(value);
  if (abs === 0) return "0";
  if (abs < zero) return "≈0";
  if (abs < 1e-3 || abs >= 1e5) return value.toExponential(digits - 1);
  if (abs >= 10 ** digits) return String(Math.round(value));
  return value.toPrecision(digits);
}

/**
 * A row of numbers as separate elements (<span class="value">, the exact value as its title),
 * spaced by CSS so neighbours never run together; see fmtSig.
 */
export function numberList(values, digits = 3) {
  return h(
    "span",
    { class: "values" },
    (values || []).map((v) =>
      h("span", { class: "value", title: typeof v === "number" ? String(v) : null }, fmtSig(v, digits)),
    ),
  );
}

/**
 * A horizontal strip with one lazily loaded thumbnail per step; clicking one calls
 * `onPick(step)`. Returns {el, setCurrent(step)}.
 */
export function filmstrip(steps, urlFor, current, onPick, { label = "epoch" } = {}) {
  const watcher = lazy();
  const items = steps.map((step) => {
    const img = h("img", { alt: `${label} ${step}`, decoding: "async", class: "thumb" });
    const item = h(
      "button",
      {
        type: "button",
        class: "frame",
        dataset: { step },
        title: `${label} ${step}`,
        onclick: () => onPick(step),
      },
      img,
      h("span", null, String(step)),
    );
    watcher.watch(item, () => {
      img.src = urlFor(step);
    });
    return item;
  });
  const el = h("div", { class: "filmstrip", role: "list" }, items);
  function setCurrent(step) {
    for (const item of items) {
      const on = Number(item.dataset.step) === step;
      item.classList.toggle("current", on);
      if (on && el.isConnected) {
        const left = item.offsetLeft - el.clientWidth / 2 + item.clientWidth / 2;
        el.scrollTo({ left: Math.max(0, left) });
      }
    }
  }
  setCurrent(current);
  return { el, setCurrent, disconnect: watcher.disconnect };
}
