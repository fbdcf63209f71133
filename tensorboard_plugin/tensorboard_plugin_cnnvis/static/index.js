// Entry point of the cnnvis dashboard, loaded by TensorBoard's plugin_entry.html, which calls
// render(): builds the shared run picker and page tabs, and mounts one page at a time.

import { showEmpty } from "./page.js";
import { api, clearCache, getState, h, notice, pick, setChildren, setState } from "./util.js";
import * as activations from "./activations.js";
import * as attribution from "./attribution.js";
import * as embeddings from "./embeddings.js";
import * as filters from "./filters.js";
import * as health from "./health.js";
import * as network from "./network.js";
import * as patches from "./patches.js";
import * as robustness from "./robustness.js";

const PAGES = [
  { id: "filters", title: "Filters", kind: "filters", module: filters },
  { id: "health", title: "Health", kind: "health", module: health },
  { id: "activations", title: "Activations", kind: "activations", module: activations },
  { id: "patches", title: "Patches", kind: "patches", module: patches },
  { id: "attribution", title: "Attribution", kind: "attribution", module: attribution },
  { id: "embeddings", title: "Embeddings", kind: "embedding", module: embeddings },
  { id: "network", title: "Network", kind: "network", module: network },
  { id: "robustness", title: "Robustness", kind: "robustness", module: robustness },
];

const KIND_TEXT = {
  filters: "filter grids (tags filters/<layer>)",
  health: "filter-health records (tags json/health/<layer>, health/<layer>)",
  activations: "activation maps (tags activations/<layer>)",
  patches: "max-activating patches (tags patches/<layer>)",
  attribution: "attribution maps (tags attribution/<method>, json/attribution/<method>)",
  embedding: "embeddings (tags json/embedding/<method>)",
  network: "network records (tags json/network/overview, network/atlas)",
  robustness: "robustness tables (tags json/robustness/heatmap, robustness/<name>)",
};

class App {
  constructor(root) {
    this.root = root;
    this.runs = [];
    this.generation = 0;
    this.cleanup = null;
    this.runSelect = h("select", {
      id: "cnnvis-run",
      "aria-label": "Run",
      onchange: () => this.go({ run: this.runSelect.value }),
    });
    this.tabs = h(
      "nav",
      { class: "tabs", role: "tablist" },
      PAGES.map((page) =>
        h(
          "button",
          {
            type: "button",
            role: "tab",
            class: "tab",
            dataset: { page: page.id },
            onclick: () => this.go({ page: page.id }),
          },
          page.title,
        ),
      ),
    );
    const reload = h(
      "button",
      {
        type: "button",
        class: "reload",
        title: "Read the logs again",
        onclick: () => {
          clearCache();
          this.start();
        },
      },
      "↻ Reload",
    );
    this.main = h("main", { class: "content" });
    setChildren(
      root,
      h(
        "header",
        { class: "top" },
        h("span", { class: "brand" }, "cnnvis"),
        h("label", { class: "control run-picker" }, h("span", null, "Run"), this.runSelect),
        this.tabs,
        reload,
      ),
      this.main,
    );
    window.addEventListener("hashchange", () => this.mount());
  }

  async start() {
    try {
      this.runs = (await api("runs")).runs;
    } catch (e) {
      setChildren(this.main, notice(`Could not list runs: ${e.message}`, "error"));
      return;
    }
    setChildren(
      this.runSelect,
      this.runs.map((r) => h("option", { value: r.run }, r.run)),
    );
    this.mount();
  }

  go(values) {
    setState(values);
    this.mount();
  }

  mount() {
    this.generation += 1;
    const generation = this.generation;
    if (this.cleanup) this.cleanup();
    this.cleanup = null;
    const page = PAGES.find((p) => p.id === getState("page")) || PAGES[0];
    for (const tab of this.tabs.children) {
      const current = tab.dataset.page === page.id;
      tab.setAttribute("aria-selected", current ? "true" : "false");
      tab.classList.toggle("current", current);
    }
    const el = h("section", { class: "page", dataset: { page: page.id, state: "loading" } });
    setChildren(this.main, el);
    if (!this.runs.length) {
      showEmpty(
        el,
        notice(
          "No keras-cnnvis records in this log directory yet. Add a keras-cnnvis callback " +
            "to model.fit (it writes into <log_dir>/cnnvis), then press Reload.",
        ),
      );
      setState({ page: page.id });
      return;
    }
    const names = this.runs.map((r) => r.run);
    const preferred = this.runs.find((r) => r.kinds.includes(page.kind)) || this.runs[0];
    const run = pick(names, getState("run"), preferred.run);
    const info = this.runs.find((r) => r.run === run);
    setState({ page: page.id, run });
    this.runSelect.value = run;
    for (const tab of this.tabs.children) {
      const target = PAGES.find((p) => p.id === tab.dataset.page);
      tab.classList.toggle("no-data", !info.kinds.includes(target.kind));
    }
    el.dataset.run = run;
    if (!info.kinds.includes(page.kind)) {
      showEmpty(
        el,
        h("h2", null, page.title),
        notice(
          `The run “${run}” has no ${KIND_TEXT[page.kind]}. Either the callbacks did not ` +
            "include this monitor, or CNNVisCallback skipped its records to stay within its " +
            "time budget (a warning at the end of fit lists what it skipped; " +
            "budget=None logs everything).",
        ),
      );
      return;
    }
    // Each page module exports mount(el, ctx), which fills `el` and resolves to a cleanup
    // function or null. ctx: the run and its record kinds, alive() (false once another page
    // was mounted) and go(values), which sets hash state and mounts again.
    const ctx = {
      run,
      kinds: info.kinds,
      alive: () => generation === this.generation,
      go: (values) => this.go(values),
    };
    el.append(h("h2", null, page.title));
    page.module
      .mount(el, ctx)
      .then((cleanup) => {
        if (generation !== this.generation) {
          if (cleanup) cleanup();
          return;
        }
        this.cleanup = cleanup || null;
        // A page's mount() resolves once it shows its data (or said it has none).
        if (el.dataset.state === "loading") el.dataset.state = "ready";
      })
      .catch((e) => {
        if (generation !== this.generation) return;
        el.dataset.state = "error";
        el.append(notice(`Could not show this page: ${e.message}`, "error"));
      });
  }
}

/** Builds the dashboard into the plugin iframe's document. */
export async function render() {
  const css = h("link", { rel: "stylesheet", href: new URL("style.css", import.meta.url).href });
  document.head.append(css);
  const root = h("div", { class: "cnnvis", id: "cnnvis-root" });
  document.body.append(root);
  const app = new App(root);
  await app.start();
}
