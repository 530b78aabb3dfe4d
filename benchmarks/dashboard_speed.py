"""Dashboard speed on a large history: the list page, the compare page and the figure endpoints.

Usage:
    python benchmarks/dashboard_speed.py [--database-url URL] [--experiments 1000] [--cycles 30]
        [--epochs 5] [--widths 1000,300,100] [--bins 32] [--requests 100] [--page-loads 10]
        [--no-browser]

Fills a database with the history generator of ``benchmarks/api_latency.py`` (``--experiments``
finished experiments of ``--cycles`` cycles, each with epochs and per-unit layer statistics), starts
``uvicorn`` in a child process, signs in as an admin (an API token for the API, a browser session
for the pages), and measures:

* API latency over one keep-alive connection, ``--requests`` rounds interleaving every endpoint:
  ``baseline`` (``GET /api/presets``: no database), the list page's call (``GET /api/experiments``,
  which carries every row's final widths, in three shapes), a 20-experiment comparison
  (``GET /api/compare`` and its four figures) and three figures of one experiment. p50 and p95 in
  milliseconds and each p50 as a ratio to the baseline's.
* Pages in headless Chromium (Debian's ``/usr/bin/chromium``, skipped with ``--no-browser`` or when
  it is missing): ``--page-loads`` cold loads (a fresh browser context each) of the list page, of a
  20-experiment compare page and of one experiment's page, timed from navigation start to the page's
  ``prunelab:<page>-ready`` performance mark (its data rendered and its controls live).

It prints JSON. The targets: list page ready < 1 s, list API p95 < 50 ms, 20-experiment comparison
API < 200 ms.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_latency  # noqa: E402  (the history generator and the uvicorn child process)
import page_speed  # noqa: E402  (a signed-in browser session)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
COMPARED = 20


def measure_api(
    url: str, ids: list[int], requests: int, token: str, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Time every endpoint the dashboard's pages call (as the holder of the API ``token``), against a
    baseline that reads no database."""
    rng = random.Random(seed)

    def compared() -> str:
        return ",".join(str(one) for one in rng.sample(ids, COMPARED))

    paths = {
        "baseline": lambda: "/api/presets",
        "list": lambda: "/api/experiments",
        "list_sorted_page_10": lambda: "/api/experiments?sort=best_metric&order=asc&offset=500",
        "list_filtered": lambda: "/api/experiments?q=bench-00&status=succeeded&tag=group3",
        "compare_20": lambda: f"/api/compare?ids={compared()}",
        "compare_20_widths": lambda: f"/api/compare/figures/widths?ids={compared()}",
        "compare_20_pareto": lambda: f"/api/compare/figures/pareto-flops?ids={compared()}",
        "compare_20_loss": lambda: f"/api/compare/figures/loss?ids={compared()}",
        "figure_training": lambda: f"/api/experiments/{rng.choice(ids)}/figures/training",
        "figure_activations": lambda: f"/api/experiments/{rng.choice(ids)}/figures/activations",
        "figure_criterion": lambda: f"/api/experiments/{rng.choice(ids)}/figures/criterion?cycle=0",
    }
    return api_latency.time_endpoints(url, paths, requests, token, warmup=5)


def measure_pages(
    url: str, ids: list[int], loads: int, cookies: dict[str, str], seed: int = 0
) -> dict[str, Any]:
    """Cold loads of the list, compare and experiment pages in headless Chromium (ms to ready), signed
    in by the browser session's ``cookies``."""
    from playwright.sync_api import sync_playwright

    rng = random.Random(seed)
    targets = {
        "list": lambda: "/",
        "compare_20": lambda: "/compare?ids=" + ",".join(str(one) for one in rng.sample(ids, COMPARED)),
        "experiment": lambda: f"/experiments/{rng.choice(ids)}",
    }
    results: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            for name, target in targets.items():
                ready: list[float] = []
                for _ in range(loads):
                    context = browser.new_context(viewport={"width": 1440, "height": 900})
                    context.add_cookies([{"name": k, "value": v, "url": url} for k, v in cookies.items()])
                    page = context.new_page()
                    page.goto(url + target())
                    page.wait_for_selector("body[data-state=ready]", timeout=30_000)
                    mark = f"prunelab:{'compare' if name.startswith('compare') else name}-ready"
                    ready.append(page.evaluate(f"performance.getEntriesByName('{mark}')[0].startTime"))
                    context.close()
                results[name] = {
                    "ready_p50_ms": round(statistics.median(ready), 1),
                    "ready_max_ms": round(max(ready), 1),
                }
        finally:
            browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    api_latency.add_history_arguments(parser, requests=100)
    parser.add_argument("--page-loads", type=int, default=10, help="cold loads per page")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium page loads")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="prunelab-dashboard-") as tmp:
        settings, report, ids = api_latency.stored_history(Path(tmp), args)
        token, cookies = api_latency.api_token(settings), page_speed.signed_in_cookies(settings)
        with api_latency.uvicorn_process(settings) as url:
            latency = measure_api(url, ids, args.requests, token)
            browser_ok = not args.no_browser and Path(CHROMIUM).exists()
            skipped: dict[str, Any] = {"skipped": "no Chromium"}
            pages = measure_pages(url, ids, args.page_loads, cookies) if browser_ok else skipped
    report.update(
        {
            "requests_per_endpoint": args.requests,
            "api": latency,
            "p50_ratio_to_baseline": api_latency.ratios_to_baseline(latency),
            "pages": pages,
            "targets": {
                "list_api_p95_under_50ms": latency["list"]["p95_ms"] < 50,
                "compare_20_api_under_200ms": latency["compare_20"]["max_ms"] < 200,
                "list_page_ready_under_1s": pages.get("list", {}).get("ready_max_ms", float("inf")) < 1000,
            },
        }
    )
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
