// Drawing server-built figures with plotly.js (loaded by the page from /vendor/plotly.min.js).
//
// Figures arrive as Plotly JSON whose user text is already escaped; Plotly.react keeps zoom, pan and
// legend state across live updates because every figure carries a stable layout.uirevision.

import { api } from "./api.js";
import { clear, h, replace } from "./dom.js";

const CONFIG = {
  responsive: true,
  displaylogo: false,
  modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"],
  toImageButtonOptions: { format: "svg", scale: 1 },
};

let plotlyLoading = null;

/**
 * plotly.js, loaded once (4.8 MB from the installed plotly package): the page renders its text and
 * tables while the browser compiles it, and charts appear when it is ready.
 */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  plotlyLoading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/vendor/plotly.min.js";
    script.async = true;
    script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js did not load")));
    script.onerror = () => {
      plotlyLoading = null;
      reject(new Error("plotly.js could not be loaded"));
    };
    document.head.append(script);
  });
  return plotlyLoading;
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
          const [figure] = await Promise.all([api.get(this.url()), loadPlotly()]);
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
