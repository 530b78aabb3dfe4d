// Drawing server-built figures with plotly.js (the page's HTML loads it from /vendor/plotly.min.js).
//
// Figures arrive as Plotly JSON whose user text is already escaped; Plotly.react keeps zoom, pan and
// legend state across live updates because every figure carries a stable layout.uirevision.
// Charts below the first screen are drawn when they scroll into view (drawWhenVisible).

import { api } from "./api.js";
import { clear, h, replace } from "./dom.js";

const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
  toImageButtonOptions: { format: "svg", scale: 1 },
};

/** plotly.js's plain URL, for a page whose HTML does not load it. */
const PLOTLY_URL = "/vendor/plotly.min.js";

/**
 * plotly.js as the page's HTML loads it: a deferred script after the page's module (compiled while it
 * downloads, run once the module has asked for its data). Listened to from here, before it can run:
 * this module is imported by the page's module, which runs first.
 */
function pageScript() {
  const script = document.getElementById("plotly-js");
  return script instanceof HTMLScriptElement ? script : null;
}

/** A promise of window.Plotly once `script` has loaded (null again after a failure, to retry). */
function whenLoaded(script) {
  return new Promise((resolve, reject) => {
    script.addEventListener("load", () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js did not load"))), { once: true });
    script.addEventListener("error", () => {
      plotlyLoading = null;
      reject(new Error("plotly.js could not be loaded"));
    }, { once: true });
  });
}

let plotlyLoading = !window.Plotly && pageScript() ? whenLoaded(pageScript()) : null;
plotlyLoading?.catch(() => {}); // a failure is reported to the charts that wait for it

/**
 * plotly.js (4.8 MB from the installed plotly package), loaded once: the page renders its text and
 * tables first, and charts appear when it is ready. A page without it in its HTML loads it here.
 */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    const script = document.createElement("script");
    script.src = pageScript()?.getAttribute("src") || PLOTLY_URL;
    script.async = true;
    plotlyLoading = whenLoaded(script);
    document.head.append(script);
  }
  return plotlyLoading;
}

/** Figures asked for before their charts exist, by URL (see prefetchFigure). */
const prefetched = new Map();

/**
 * Ask for a figure now, before its chart exists (a first-screen chart's, while the page still waits
 * for the data it lays out); the first Chart to refresh from the same URL takes the answer. Only for
 * charts on the first screen: the others are asked for when they are drawn.
 */
export function prefetchFigure(url) {
  if (prefetched.has(url)) return;
  const answer = api.get(url);
  answer.catch(() => {}); // a failure is the chart's to show, when it takes the answer
  prefetched.set(url, answer);
}

/** A figure: the prefetched answer for its URL (once), else a new request. */
function fetchFigure(url) {
  const early = prefetched.get(url);
  if (!early) return api.get(url);
  prefetched.delete(url);
  return early;
}

/** Draw (or redraw in place) a figure into a chart element. */
export async function draw(element, figure) {
  await loadPlotly();
  const layout = { ...figure.layout, autosize: true };
  delete layout.width;
  delete layout.height;
  // The card around the chart carries the title; the space goes to the plot.
  layout.title = { text: "" };
  const notesOnTop = (layout.annotations || []).some((note) => note.yref === "paper" && note.y >= 1);
  layout.margin = { ...layout.margin, t: notesOnTop ? 34 : 14 };
  // plotly.js 4 syncs an overlaying axis's ticks to its base axis (odd labels such as 499.989k);
  // a second y axis with a scale of its own gets ticks of its own.
  for (const [key, value] of Object.entries(layout)) {
    if (/^[xy]axis\d*$/.test(key) && value?.overlaying && !value.tickmode) layout[key] = { ...value, tickmode: "auto" };
  }
  // The legend sits at the bottom edge of the chart, below the x axis title, never on top of it.
  if (layout.legend) layout.legend = { ...layout.legend, yref: "container", y: 0, yanchor: "bottom" };
  if (!element.classList.contains("js-plotly-plot")) clear(element);
  element.classList.remove("chart-loading", "chart-failed");
  return window.Plotly.react(element, figure.data, layout, CONFIG);
}

/**
 * A chart that fetches its figure from `url()` and redraws on `refresh()`.
 * Overlapping refreshes are collapsed: at most one request in flight, one queued.
 */
export class Chart {
  constructor(element, url) {
    this.element = element;
    this.url = url;
    this.inFlight = null;
    this.again = false;
    this.loaded = false;
  }

  async refresh() {
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    this.inFlight = (async () => {
      do {
        this.again = false;
        try {
          const [figure] = await Promise.all([fetchFigure(this.url()), loadPlotly()]);
          await draw(this.element, figure);
          this.loaded = true;
          this.element.dataset.loaded = "true";
        } catch (error) {
          this.element.classList.add("chart-failed");
          if (!this.loaded) replace(this.element, h("div", { class: "chart-error" }, `Could not draw this chart: ${error.message}`));
        }
      } while (this.again);
    })();
    try {
      await this.inFlight;
    } finally {
      this.inFlight = null;
    }
  }
}

/** Redraw every Plotly chart in the page after a layout change (e.g. a card was widened). */
export function resizeAll() {
  if (!window.Plotly) return;
  for (const element of document.querySelectorAll(".js-plotly-plot")) window.Plotly.Plots.resize(element);
}

// ------------------------------------------------------------------------------- drawing when visible

/** How far outside the window a chart starts drawing (it is ready when scrolled to). */
const VISIBLE_MARGIN = "200px 0px";
/** Draws of charts on the screen, in progress: the idle fallback waits for them. */
const drawingOnScreen = new Set();
/** Per element, the draw waiting for it to scroll into view (a later call replaces the function). */
const waiting = new WeakMap();

function track(promise) {
  drawingOnScreen.add(promise);
  promise.finally(() => drawingOnScreen.delete(promise)).catch(() => {});
  return promise;
}

const nextFrame = () => new Promise((resolve) => requestAnimationFrame(() => resolve()));
const whenIdle = () =>
  new Promise((resolve) => (window.requestIdleCallback ? requestIdleCallback(() => resolve(), { timeout: 1500 }) : setTimeout(resolve, 200)));

/** Resolves once the page has loaded, the charts on the first screen are drawn and the browser is idle. */
async function afterFirstScreen() {
  if (document.readyState !== "complete") await new Promise((resolve) => window.addEventListener("load", resolve, { once: true }));
  await nextFrame();
  await nextFrame(); // the observers have reported what is on screen, and those draws have started
  while (drawingOnScreen.size) await Promise.allSettled([...drawingOnScreen]);
  await whenIdle();
}

/**
 * Run `draw()` when `element` scrolls into view (or comes within VISIBLE_MARGIN of it); at once where
 * IntersectionObserver is missing. A chart nobody scrolls to is drawn anyway once the charts on the
 * first screen are drawn and the browser is idle (`idle: false` waits for the scroll only), so the
 * first screen gets the network and the CPU first and everything is drawn in the end.
 * A second call for an element still waiting replaces its draw and shares its promise.
 *
 * @param {Element} element the chart's element
 * @param {() => unknown} draw draws it (e.g. `() => chart.refresh()`)
 * @param {{idle?: boolean}} [options]
 * @returns {Promise<unknown>} settles as the draw does (undefined if the element left the page first)
 */
export function drawWhenVisible(element, draw, { idle = true } = {}) {
  if (!("IntersectionObserver" in window)) return Promise.resolve().then(draw);
  const pending = waiting.get(element);
  if (pending) {
    pending.draw = draw;
    return pending.promise;
  }
  const entry = { draw, promise: null };
  entry.promise = new Promise((resolve, reject) => {
    let started = false;
    const start = (onScreen) => {
      if (started) return;
      started = true;
      observer.disconnect();
      waiting.delete(element);
      if (!element.isConnected) return resolve(undefined);
      const drawing = Promise.resolve().then(entry.draw);
      if (onScreen) track(drawing);
      drawing.then(resolve, reject);
    };
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((seen) => seen.isIntersecting)) start(true);
    }, { rootMargin: VISIBLE_MARGIN });
    observer.observe(element);
    if (idle) afterFirstScreen().then(() => start(false));
  });
  waiting.set(element, entry);
  return entry.promise;
}
