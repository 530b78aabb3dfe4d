"""What a page's head asks for before its script runs: every module the script imports (read from the
scripts' import lines), and plotly.js only on the pages that draw charts, after the page's module."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from backend.api.module_graph import imported_modules
from backend.api.pages import FRONTEND_DIR, LIST_FIRST_REQUEST


def _head(client: TestClient, path: str) -> str:
    html = client.get(path).text
    return html.split("</head>", 1)[0]


def _preloaded(head: str) -> list[str]:
    return re.findall(r'<link rel="modulepreload" href="/static/js/([^"]+)">', head)


@pytest.mark.parametrize(
    ("path", "script"),
    [("/", "list.js"), ("/experiments/1", "experiment.js"), ("/compare", "compare.js"), ("/new", "new.js")],
)
def test_a_page_preloads_every_module_its_script_imports(
    sqlite_client: TestClient, path: str, script: str
) -> None:
    preloaded = _preloaded(_head(sqlite_client, path))

    assert len(preloaded) == len(set(preloaded))
    assert set(preloaded) == set(imported_modules(FRONTEND_DIR / "js", f"pages/{script}"))
    for module in preloaded:  # each one is served
        assert sqlite_client.get(f"/static/js/{module}").status_code == 200


def test_the_experiment_page_preloads_the_modules_its_imports_import() -> None:
    modules = imported_modules(FRONTEND_DIR / "js", "pages/experiment.js")

    # imported by experiment.js itself, by plots.js's importers and by spec-view.js (criteria.js)
    assert {"architecture.js", "run-actions.js", "criteria.js", "plots.js", "dom.js"} <= set(modules)
    assert "pages/experiment.js" not in modules


def test_the_list_page_preloads_its_first_request_in_its_default_state(sqlite_client: TestClient) -> None:
    preload = f'<link rel="preload" as="fetch" crossorigin="anonymous" href="{LIST_FIRST_REQUEST}">'

    assert preload in _head(sqlite_client, "/")
    assert 'rel="preload"' not in _head(sqlite_client, "/?status=failed")  # another first request
    assert 'rel="preload"' not in _head(sqlite_client, "/new")
    # each variant has its own ETag, so a cached one is never taken for the other
    first, other = sqlite_client.get("/"), sqlite_client.get("/?status=failed")
    assert first.headers["etag"] != other.headers["etag"]


def test_the_list_page_does_not_load_plotly(sqlite_client: TestClient) -> None:
    assert "plotly" not in _head(sqlite_client, "/")


@pytest.mark.parametrize("path", ["/experiments/1", "/compare"])
def test_a_chart_page_runs_plotly_after_its_module(sqlite_client: TestClient, path: str) -> None:
    head = _head(sqlite_client, path)

    module = head.index('<script type="module" src="/static/js/pages/')
    plotly = re.search(r'<script defer [^>]*src="/vendor/plotly\.min\.js\?v=[^"]+" id="plotly-js">', head)
    assert plotly is not None and plotly.start() > module  # deferred scripts run in document order


def test_imports_are_followed_through_every_form_and_cycle(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    (tmp_path / "pages" / "page.js").write_text(
        'import { a,\n  b } from "../a.js";\nimport "../side.js";\n// import { no } from "../comment.js"\n'
        'const lazy = () => import("../lazy.js");\n',
        encoding="utf-8",
    )
    exports = 'export { c } from "./c.js";\nimport * as b from "./b.js";\n'
    (tmp_path / "a.js").write_text(exports, encoding="utf-8")
    (tmp_path / "b.js").write_text('import { a } from "./a.js";\n', encoding="utf-8")  # a cycle
    (tmp_path / "c.js").write_text("export const c = 1;\n", encoding="utf-8")
    (tmp_path / "side.js").write_text("window.x = 1;\n", encoding="utf-8")

    assert imported_modules(tmp_path, "pages/page.js") == ("a.js", "c.js", "b.js", "side.js")


def test_an_import_of_a_missing_module_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "page.js").write_text('import { gone } from "./gone.js";\n', encoding="utf-8")

    with pytest.raises(FileNotFoundError):
        imported_modules(tmp_path, "page.js")
