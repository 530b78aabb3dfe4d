"""Page speed with a cold browser cache on a large history: when each page's charts are drawn.

Usage:
    python benchmarks/page_speed.py [--experiments 1000] [--cycles 30] [--runs 5] [--quick]
        [--throttle-mbps 0] [--no-baseline] [--database-url URL]

Fills a database with the history generator of ``benchmarks/api_latency.py`` (``--experiments``
finished experiments of ``--cycles`` cycles each; ``--quick``: 100 experiments, 3 runs), serves it
with ``uvicorn`` on loopback, asks once for every file a page needs (the server gzips each file once,
after start-up) and loads each page once untimed (the database's caches), then opens each page
``--runs`` times in headless Chromium (``/usr/bin/chromium``), each time in a fresh browser context
(a cold cache), viewport 1440×900, and measures from navigation start:

* ``list``: until the experiment table has its rows;
* ``experiment`` (one experiment) and ``compare`` (20 experiments): ``first_screen_ms``, until every
  chart that is on the first screen is drawn (Plotly finished, the chart's ``data-loaded`` set), and
  ``all_charts_ms``, until every chart of the page is drawn without scrolling (those below the first
  screen are drawn once the browser is idle, or when scrolled to);
* ``plotly_ran``: until plotly.js has run (compiling and running 4.8 MB of script: the largest
  single cost of a cold load);
* ``kb``: the bytes that crossed the network for the page (compressed sizes).

Unless ``--no-baseline``, each run also loads the page with ``Accept-Encoding: identity`` (no
compression), alternating with the compressed loads, and the ratio of each median to the baseline's
is printed. Compression pays where the
network is slower than loopback: ``--throttle-mbps 50`` emulates a 50 Mbit/s link (Chromium's
network emulation) for both.

It prints JSON: per page the median and maximum of each measure. Targets: every page's charts on
the first screen drawn < 1000 ms, the list's rows < 300 ms. A benchmark, not a test: absolute times
depend on the machine and its load (printed): run it on a quiet machine, from the repository root
with ``PYTHONPATH=.`` so that the history is written by this checkout's code.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_latency  # noqa: E402  (the history generator and the uvicorn child process)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}
COMPARED = 20
TARGET_CHARTS_MS = 1000.0
TARGET_LIST_MS = 300.0
#: Records when the list's first row appears, when plotly.js has run (it sets window.Plotly) and when
#: each chart is drawn (ms since navigation).
RECORDER = """
window.__speed = { drawn: {}, rows: null, plotly: null };
let plotly;
Object.defineProperty(window, "Plotly", {
  configurable: true,
  get: () => plotly,
  set: (value) => { plotly = value; window.__speed.plotly ??= performance.now(); },
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
#: After the page is ready: what was measured, which charts sit on the first screen, bytes moved.
RESULTS = """() => {
  const speed = window.__speed;
  const charts = [...document.querySelectorAll(".chart")];
  const onScreen = charts.filter((chart) => chart.getBoundingClientRect().top < window.innerHeight);
  const entries = ["navigation", "resource"].flatMap((kind) => performance.getEntriesByType(kind));
  return {
    rows: speed.rows,
    plotly: speed.plotly,
    drawn: speed.drawn,
    charts: charts.map((chart) => chart.id),
    onScreen: onScreen.map((chart) => chart.id),
    bytes: entries.reduce((sum, entry) => sum + (entry.transferSize || 0), 0),
    scrolled: window.scrollY,
  };
}"""


def _targets(ids: list[int], seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    return {
        "list": "/",
        "experiment": f"/experiments/{rng.choice(ids)}",
        "compare": "/compare?ids=" + ",".join(str(one) for one in rng.sample(ids, min(COMPARED, len(ids)))),
    }


def warm_server(url: str, targets: dict[str, str]) -> None:
    """Ask once for each page and the files it names, so the server has gzipped them (once per file)."""
    with httpx.Client(base_url=url, timeout=60, headers={"Accept-Encoding": "gzip"}) as client:
        for target in targets.values():
            html = client.get(target).text
            for marker in ('href="', 'src="'):
                for part in html.split(marker)[1:]:
                    link = part.split('"', 1)[0]
                    if link.startswith("/"):
                        client.get(link)


def _load(browser: Any, url: str, throttle_mbps: float, identity: bool) -> dict[str, Any]:
    """One cold load of a page: a fresh context, optionally without compression and throttled."""
    headers = {"Accept-Encoding": "identity"} if identity else {}
    context = browser.new_context(viewport=VIEWPORT, extra_http_headers=headers)
    try:
        page = context.new_page()
        page.add_init_script(RECORDER)
        if throttle_mbps > 0:
            cdp = context.new_cdp_session(page)
            cdp.send("Network.enable")
            rate = throttle_mbps * 1e6 / 8
            link = {"downloadThroughput": rate, "uploadThroughput": rate}
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 2, **link})
        page.goto(url)
        page.wait_for_selector("body[data-state=ready]", timeout=60_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.chart').length === Object.keys(window.__speed.drawn).length",
            timeout=60_000,
        )
        result: dict[str, Any] = page.evaluate(RESULTS)
        return result
    finally:
        context.close()


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


def _page_summary(name: str, loads: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and maximum of a page's measures over its loads."""
    page: dict[str, Any] = {"kb": round(statistics.median(load["bytes"] for load in loads) / 1024)}
    if name == "list":
        page["rows"] = _summary([load["rows"] for load in loads])
        return page
    page["charts"] = len(loads[0]["charts"])
    page["charts_on_first_screen"] = len(loads[0]["onScreen"])
    page["plotly_ran"] = _summary([load["plotly"] for load in loads])
    page["first_screen"] = _summary(
        [max(load["drawn"][chart] for chart in load["onScreen"]) for load in loads]
    )
    page["all_charts"] = _summary([max(load["drawn"].values()) for load in loads])
    return page


def measure_pages(
    url: str, targets: dict[str, str], runs: int, throttle_mbps: float, baseline: bool
) -> dict[str, dict[str, Any]]:
    """``runs`` cold loads of every page, after one untimed load (it warms the server's caches); with
    ``baseline``, each run also loads the page without compression, right after (alternating, so that
    both see the same machine). Returns per mode (``gzip``, ``identity``) and page the medians."""
    from playwright.sync_api import sync_playwright

    modes = {"gzip": False, **({"identity": True} if baseline else {})}
    loads: dict[str, dict[str, list[dict[str, Any]]]] = {mode: {} for mode in modes}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for name, target in targets.items():
                _load(browser, url + target, throttle_mbps, identity=False)
                for _ in range(runs):
                    for mode, identity in modes.items():
                        load = _load(browser, url + target, throttle_mbps, identity)
                        loads[mode].setdefault(name, []).append(load)
        finally:
            browser.close()
    return {
        mode: {name: _page_summary(name, samples) for name, samples in pages.items()}
        for mode, pages in loads.items()
    }


def _ratios(measured: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float]:
    """Each page's median over the uncompressed baseline's (below 1: compression helped)."""
    ratios = {}
    for name, page in measured.items():
        key = "rows" if name == "list" else "first_screen"
        ratios[name] = round(page[key]["median_ms"] / baseline[name][key]["median_ms"], 2)
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    api_latency.add_history_arguments(parser, requests=0)
    parser.add_argument("--runs", type=int, default=5, help="cold loads per page")
    parser.add_argument("--quick", action="store_true", help="100 experiments, 3 runs")
    parser.add_argument("--throttle-mbps", type=float, default=0.0, help="emulated link speed; 0: loopback")
    parser.add_argument("--no-baseline", action="store_true", help="skip the loads without compression")
    args = parser.parse_args(argv)
    if args.quick:
        args.experiments, args.runs = min(args.experiments, 100), min(args.runs, 3)
    if not Path(CHROMIUM).exists():
        print(json.dumps({"skipped": f"no Chromium at {CHROMIUM}"}))
        return 0

    with tempfile.TemporaryDirectory(prefix="prunelab-page-speed-") as tmp:
        settings, report, ids = api_latency.stored_history(Path(tmp), args)
        with api_latency.uvicorn_process(settings) as url:
            targets = _targets(ids)
            warm_server(url, targets)
            measured = measure_pages(url, targets, args.runs, args.throttle_mbps, not args.no_baseline)
    pages, baseline = measured["gzip"], measured.get("identity")
    report.update(
        {
            "cpus": os.cpu_count(),
            "load_average_1min_after": round(os.getloadavg()[0], 1),  # other work slows every number
            "runs": args.runs,
            "throttle_mbps": args.throttle_mbps or "loopback",
            "pages": pages,
            "targets": {
                "list_rows_under_300ms": pages["list"]["rows"]["median_ms"] < TARGET_LIST_MS,
                **{
                    f"{name}_first_screen_under_1s": pages[name]["first_screen"]["median_ms"]
                    < TARGET_CHARTS_MS
                    for name in ("experiment", "compare")
                },
            },
        }
    )
    if baseline is not None:
        report["uncompressed"] = baseline
        report["ratio_to_uncompressed"] = _ratios(pages, baseline)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
