"""Page speed with a cold browser cache on a large history: when each page's rows and charts are drawn.

Usage:
    python benchmarks/page_speed.py [--experiments 1000] [--cycles 30] [--runs 5] [--quick]
        [--throttle-mbps 0] [--no-baseline] [--against DIR] [--pages list,experiment,compare]
        [--database-url URL]

Fills a database with the history generator of ``benchmarks/api_latency.py`` (``--experiments``
finished experiments of ``--cycles`` cycles each; ``--quick``: 100 experiments, 3 runs), serves it
with ``uvicorn`` on loopback and signs in as an admin (a browser session, its cookie given to every
browser context: what a signed-in user sees). It asks once for every file a page needs (the server
gzips each file once, after start-up) and loads each page once untimed (the database's caches), then
opens each page ``--runs`` times in headless Chromium (``/usr/bin/chromium``), each time in a fresh
browser context (a cold cache), viewport 1440×900, and measures from navigation start:

* ``list``: ``rows``, until the experiment table has its rows;
* ``experiment`` (one experiment) and ``compare`` (20 experiments): ``first_screen``, until every
  chart that is on the first screen is drawn (Plotly finished, the chart's ``data-loaded`` set), and
  ``all_charts``, until every chart of the page is drawn without scrolling (those below the first
  screen are drawn once the browser is idle, or when scrolled to);
* ``after_plotly``: from plotly.js having run until the first screen's charts are drawn (the part
  of ``first_screen`` that is not plotly.js's start-up: waiting for data, drawing);
* ``plotly_ran``: until plotly.js has run (compiling and running the script: the largest single cost
  of a cold chart page);
* ``kb``: the bytes that crossed the network for the page (compressed sizes);
* ``timeline``: the waterfall of the load with the median headline measure: when the HTML, our
  modules and plotly.js had arrived, how long plotly.js took to run, each Plotly draw, and each API
  request's start, server time (request sent → first byte) and end.

Baselines, loaded alternately with the measured pages so that both see the same machine:

* unless ``--no-baseline``: the same pages with ``Accept-Encoding: identity`` (no compression);
* ``--against DIR``: the same pages served by another checkout of prunelab (e.g. the commit before a
  change, from ``git worktree add DIR COMMIT``), on the same database, in a server of its own.

Each page's median is printed as a ratio to each baseline's. ``--pages`` measures only the pages named
(e.g. ``--pages list --runs 15``: more loads of one page in the same time). Compression pays where
the network is slower than loopback: ``--throttle-mbps 50`` emulates a 50 Mbit/s link (Chromium's
network emulation).

It prints JSON: per page the median and maximum of each measure. Targets: every page's charts on
the first screen drawn < 1000 ms, the list's rows < 300 ms. A benchmark, not a test: absolute times
depend on the machine and its load (printed, before and after): run it from the repository root with
``PYTHONPATH=.`` so that the history is written by this checkout's code.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_latency  # noqa: E402  (the history generator and the uvicorn child process)
from page_timeline import RECORDER, RESULTS, breakdown, median_load, page_measures, summary  # noqa: E402

from backend.app import create_app  # noqa: E402, F401  (first: the API's modules import in its order)
from backend.auth.deps import CSRF_COOKIE, SESSION_COOKIE  # noqa: E402
from backend.auth.sessions import open_session  # noqa: E402
from backend.db import make_engine, make_session_factory, session_scope  # noqa: E402
from backend.settings import Settings  # noqa: E402

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
#: Where each page ends up when it loads: anything else (the sign-in page) is a broken measurement.
HEADLINE = {"list": "rows", "experiment": "first_screen", "compare": "first_screen"}


def _targets(ids: list[int], seed: int = 0) -> dict[str, str]:
    rng = random.Random(seed)
    return {
        "list": "/",
        "experiment": f"/experiments/{rng.choice(ids)}",
        "compare": "/compare?ids=" + ",".join(str(one) for one in rng.sample(ids, min(COMPARED, len(ids)))),
    }


def signed_in_cookies(settings: Settings) -> dict[str, str]:
    """A browser session of an admin (created once per database): its two cookies."""
    engine = make_engine(settings)
    try:
        with session_scope(make_session_factory(engine)) as session:
            opened = open_session(session, api_latency.reader(session), days=1)
            return {SESSION_COOKIE: opened.secret, CSRF_COOKIE: opened.csrf_token}
    finally:
        engine.dispose()


def warm_server(url: str, targets: dict[str, str], cookies: dict[str, str]) -> None:
    """Ask once for each page and the files it names, so the server has gzipped them (once per file)."""
    headers = {"Accept-Encoding": "gzip", "Accept": "text/html"}
    with httpx.Client(base_url=url, timeout=60, headers=headers, cookies=cookies) as client:
        for target in targets.values():
            response = client.get(target)
            if response.status_code != 200:
                raise RuntimeError(f"{target} answered {response.status_code}, not the page: not signed in?")
            for marker in ('href="', 'src="'):
                for part in response.text.split(marker)[1:]:
                    link = part.split('"', 1)[0]
                    if link.startswith("/"):
                        client.get(link)


def _load(
    browser: Any, url: str, cookies: dict[str, str], throttle_mbps: float, identity: bool
) -> dict[str, Any]:
    """One cold load of a page: a fresh context (signed in), optionally without compression and
    throttled."""
    headers = {"Accept-Encoding": "identity"} if identity else {}
    context = browser.new_context(viewport=VIEWPORT, extra_http_headers=headers)
    try:
        origin = url.split("/", 3)
        context.add_cookies(
            [{"name": name, "value": value, "url": "/".join(origin[:3])} for name, value in cookies.items()]
        )
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


def _checked(name: str, target: str, load: dict[str, Any]) -> dict[str, Any]:
    """The load, or an error when the page is not the one asked for or shows nothing to measure."""
    expected = target.split("?", 1)[0]
    if load["path"] != expected:
        raise RuntimeError(f"{target} ended at {load['path']} (the sign-in page?): nothing to measure")
    if name == "list" and load["rows"] is None:
        raise RuntimeError("the list page drew no row with data-id: nothing to measure")
    if name != "list" and not load["charts"]:
        raise RuntimeError(f"{target} drew no chart: nothing to measure")
    return load


def _page_summary(name: str, loads: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and maximum of a page's measures over its loads, and the median load's waterfall."""
    page: dict[str, Any] = {"kb": round(statistics.median(load["bytes"] for load in loads) / 1024)}
    measures = [page_measures(load) for load in loads]
    for key in measures[0]:
        page[key] = summary([one[key] for one in measures])
    if name != "list":
        page["charts"] = len(loads[0]["charts"])
        page["charts_on_first_screen"] = len(loads[0]["onScreen"])
        page["plotly_ran"] = summary([load["plotly"] for load in loads])
    page["timeline"] = breakdown(median_load(loads, HEADLINE[name]))
    return page


@contextlib.contextmanager
def _server(settings: Settings, checkout: Path | None) -> Iterator[str]:
    """``uvicorn`` serving this checkout, or ``checkout`` (its code: ``python -m`` imports from the
    working directory)."""
    if checkout is None:
        with api_latency.uvicorn_process(settings) as url:
            yield url
        return
    with contextlib.ExitStack() as stack:
        with contextlib.chdir(checkout):
            url = stack.enter_context(api_latency.uvicorn_process(settings))
        yield url


def measure_pages(
    modes: dict[str, tuple[str, bool]],
    targets: dict[str, str],
    cookies: dict[str, str],
    runs: int,
    throttle_mbps: float,
) -> dict[str, dict[str, Any]]:
    """``runs`` cold loads of every page in every mode (name → server URL, identity encoding), after
    one untimed load each (it warms the server's caches); the modes alternate within each run, so that
    all see the same machine, first to last in even runs and last to first in odd ones (a load right
    after another pays for the closing of its context). Returns per mode and page the summary."""
    from playwright.sync_api import sync_playwright

    loads: dict[str, dict[str, list[dict[str, Any]]]] = {mode: {} for mode in modes}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for name, target in targets.items():
                for url, identity in modes.values():
                    _checked(name, target, _load(browser, url + target, cookies, throttle_mbps, identity))
                for run in range(runs):
                    order = list(modes.items())
                    for mode, (url, identity) in order[::-1] if run % 2 else order:
                        load = _load(browser, url + target, cookies, throttle_mbps, identity)
                        loads[mode].setdefault(name, []).append(_checked(name, target, load))
        finally:
            browser.close()
    return {
        mode: {name: _page_summary(name, samples) for name, samples in pages.items()}
        for mode, pages in loads.items()
    }


def _ratios(measured: dict[str, Any], baseline: dict[str, Any]) -> dict[str, float]:
    """Each page's headline median over the baseline's (below 1: faster than the baseline)."""
    ratios = {}
    for name, page in measured.items():
        key = HEADLINE[name]
        ratios[name] = round(page[key]["median_ms"] / baseline[name][key]["median_ms"], 2)
    return ratios


def _targets_met(pages: dict[str, Any]) -> dict[str, bool]:
    met = {}
    if "list" in pages:
        met["list_rows_under_300ms"] = pages["list"]["rows"]["median_ms"] < TARGET_LIST_MS
    for name in ("experiment", "compare"):
        if name in pages:
            met[f"{name}_first_screen_under_1s"] = pages[name]["first_screen"]["median_ms"] < TARGET_CHARTS_MS
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    api_latency.add_history_arguments(parser, requests=0)
    parser.add_argument("--runs", type=int, default=5, help="cold loads per page")
    parser.add_argument("--quick", action="store_true", help="100 experiments, 3 runs")
    parser.add_argument("--throttle-mbps", type=float, default=0.0, help="emulated link speed; 0: loopback")
    parser.add_argument("--no-baseline", action="store_true", help="skip the loads without compression")
    parser.add_argument("--against", type=Path, default=None, help="another checkout to load alternately")
    parser.add_argument("--pages", default=",".join(HEADLINE), help="the pages to measure, comma-separated")
    args = parser.parse_args(argv)
    pages_asked = [name.strip() for name in args.pages.split(",") if name.strip()]
    if not pages_asked or set(pages_asked) - set(HEADLINE):
        parser.error(f"--pages: choose among {', '.join(HEADLINE)}, not {args.pages!r}")
    if args.quick:
        args.experiments, args.runs = min(args.experiments, 100), min(args.runs, 3)
    if not Path(CHROMIUM).exists():
        print(json.dumps({"skipped": f"no Chromium at {CHROMIUM}"}))
        return 0
    if args.against is not None and not (args.against / "backend" / "app.py").is_file():
        parser.error(f"--against: {args.against} is not a prunelab checkout (no backend/app.py)")

    load_before = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory(prefix="prunelab-page-speed-") as tmp:
        settings, report, ids = api_latency.stored_history(Path(tmp), args)
        cookies = signed_in_cookies(settings)
        targets = {name: target for name, target in _targets(ids).items() if name in pages_asked}
        with contextlib.ExitStack() as servers:
            url = servers.enter_context(_server(settings, None))
            modes = {"gzip": (url, False)}
            if not args.no_baseline:
                modes["identity"] = (url, True)
            if args.against is not None:
                modes["against"] = (servers.enter_context(_server(settings, args.against.resolve())), False)
            for server_url in {one for one, _ in modes.values()}:
                warm_server(server_url, targets, cookies)
            measured = measure_pages(modes, targets, cookies, args.runs, args.throttle_mbps)
    pages = measured.pop("gzip")
    report.update(
        {
            "cpus": os.cpu_count(),
            # other work slows every number: the 1-minute load average before and after
            "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 1)},
            "runs": args.runs,
            "throttle_mbps": args.throttle_mbps or "loopback",
            "pages": pages,
            "targets": _targets_met(pages),
        }
    )
    names = {"identity": "uncompressed", "against": f"against {args.against}"}
    for mode, baseline in measured.items():
        report[names[mode]] = baseline
        report[f"ratio_to_{mode}"] = _ratios(pages, baseline)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
