"""What a page did while it loaded, read in the browser: when its rows and charts appeared, when
plotly.js ran, each Plotly draw, and every request from the performance timeline (``page_speed.py``).

``RECORDER`` runs before any script of the page (Playwright's init script); ``RESULTS`` is evaluated
once the page is ready. ``breakdown`` turns one load's results into the page's waterfall: the HTML,
our modules, plotly.js's download and run, and each API request with its server time.
"""

from __future__ import annotations

import re
import statistics
from typing import Any

#: Records when the list's first row appears, when plotly.js has run (it sets window.Plotly), how long
#: each Plotly draw took and when each chart is drawn (ms since navigation).
RECORDER = """
window.__speed = { drawn: {}, rows: null, plotly: null, draws: [] };
let plotly;
function timeDraws(library) {
  const react = library.react;
  library.react = async function (element, ...rest) {
    const started = performance.now();
    try {
      return await react.call(this, element, ...rest);
    } finally {
      window.__speed.draws.push({ chart: element.id, start: started, ms: performance.now() - started });
    }
  };
}
Object.defineProperty(window, "Plotly", {
  configurable: true,
  get: () => plotly,
  set: (value) => {
    plotly = value;
    if (window.__speed.plotly === null) {
      window.__speed.plotly = performance.now();
      if (value && typeof value.react === "function") timeDraws(value);
    }
  },
});
new MutationObserver(() => {
  const speed = window.__speed;
  const rows = document.querySelector("#experiments-body tr[data-id]");
  if (speed.rows === null && rows) speed.rows = performance.now();
  for (const chart of document.querySelectorAll(".chart[data-loaded=true]")) {
    if (!(chart.id in speed.drawn)) speed.drawn[chart.id] = performance.now();
  }
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["data-loaded"] });
"""

#: After the page is ready: what was measured, which charts sit on the first screen, every request.
RESULTS = """() => {
  const speed = window.__speed;
  const charts = [...document.querySelectorAll(".chart")];
  const onScreen = charts.filter((chart) => chart.getBoundingClientRect().top < window.innerHeight);
  const entries = ["navigation", "resource"].flatMap((kind) => performance.getEntriesByType(kind));
  const requests = entries.map((entry) => ({
    url: entry.name,
    kind: entry.initiatorType,
    start: entry.startTime,
    server: entry.responseStart - entry.requestStart,
    end: entry.responseEnd,
    bytes: entry.transferSize || 0,
  }));
  return {
    path: location.pathname,
    rows: speed.rows,
    plotly: speed.plotly,
    drawn: speed.drawn,
    draws: speed.draws,
    charts: charts.map((chart) => chart.id),
    onScreen: onScreen.map((chart) => chart.id),
    requests,
    bytes: requests.reduce((sum, request) => sum + request.bytes, 0),
    scrolled: window.scrollY,
  };
}"""


def request_name(url: str) -> str:
    """A request's path without its query, ids written ``{id}`` (one name for every experiment)."""
    path = re.sub(r"^https?://[^/]+", "", url).split("?", 1)[0]
    return re.sub(r"/\d+(?=/|$)", "/{id}", path) or "/"


def breakdown(load: dict[str, Any]) -> dict[str, Any]:
    """One load's waterfall in ms since navigation: when the HTML, our modules and plotly.js had
    arrived, when plotly.js had run, and per API request its start, server time and end."""
    requests = load["requests"]
    navigation = next((one for one in requests if one["kind"] == "navigation"), None)
    modules = [one for one in requests if "/static/js/" in one["url"]]
    plotly = [one for one in requests if "/vendor/plotly" in one["url"]]
    api: dict[str, dict[str, int]] = {}
    for one in sorted(requests, key=lambda request: request["start"]):
        if "/api/" in one["url"] or one["url"].endswith("/openapi.json"):
            api.setdefault(request_name(one["url"]), {k: round(one[k]) for k in ("start", "server", "end")})
    timeline: dict[str, Any] = {
        "html_ms": round(navigation["end"]) if navigation else None,
        "modules": len(modules),
        "modules_ms": round(max(one["end"] for one in modules)) if modules else None,
    }
    if plotly:
        timeline["plotly_downloaded_ms"] = round(plotly[0]["end"])
        if load["plotly"] is not None:
            timeline["plotly_ran_ms"] = round(load["plotly"])
            timeline["plotly_run_ms"] = round(load["plotly"] - plotly[0]["end"])
    if load["draws"]:
        timeline["plotly_draws_ms"] = {one["chart"]: round(one["ms"]) for one in load["draws"]}
    timeline["api"] = api
    return timeline


def median_load(loads: list[dict[str, Any]], measure: str) -> dict[str, Any]:
    """The load whose ``measure`` (a key of ``page_measures``) is the median (the lower of two)."""
    ordered = sorted(loads, key=lambda load: page_measures(load)[measure])
    return ordered[(len(ordered) - 1) // 2]


def page_measures(load: dict[str, Any]) -> dict[str, float]:
    """One load's measures: the list's ``rows``; a chart page's ``first_screen`` (every chart on the
    first screen drawn; plotly.js's run when none is), ``all_charts`` and ``after_plotly`` (from
    plotly.js having run to the first screen drawn: what is not plotly.js's own start-up)."""
    if load["rows"] is not None or not load["charts"]:
        return {"rows": load["rows"] if load["rows"] is not None else float("nan")}
    drawn = load["drawn"]
    plotly = load["plotly"] or 0.0
    first = max([drawn[chart] for chart in load["onScreen"]] or [plotly])
    return {"first_screen": first, "all_charts": max(drawn.values()), "after_plotly": first - plotly}


def summary(samples: list[float]) -> dict[str, float]:
    """Median and maximum, rounded to a tenth of a millisecond."""
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}
