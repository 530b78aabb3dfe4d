"""The client verbs end to end against a live server (uvicorn on a loopback port, SQLite): submit with
PRUNELAB_PORT, list, show, cancel, rerun, export, delete, push; and the real ``prunelab`` entry point."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi import FastAPI
from servers import LiveServer, live_server

from backend.cli import main
from tests.api.conftest import SPEC, RowFactory

PRUNELAB = [sys.executable, "-m", "backend.cli"]


@pytest.fixture
def server(sqlite_app: FastAPI) -> Iterator[LiveServer]:
    with live_server(sqlite_app) as running:
        yield running


def _spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(copy.deepcopy(SPEC)))
    return path


def test_submit_finds_the_server_from_prunelab_port_and_prints_the_dashboard_url(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = str(urlsplit(server.url).port)
    monkeypatch.delenv("PRUNELAB_SERVER", raising=False)
    monkeypatch.setenv("PRUNELAB_HOST", "127.0.0.1")
    monkeypatch.setenv("PRUNELAB_PORT", port)
    assert main(["submit", str(_spec_file(tmp_path))]) == 0
    assert capsys.readouterr().out.strip() == f"submitted experiment 1: {server.url}/experiments/1"


def test_list_show_cancel_rerun_delete(
    server: LiveServer, sqlite_rows: RowFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    done = sqlite_rows.experiment(status="succeeded", final_cycle=0, stop_reason="tolerance", cycles_done=2)
    sqlite_rows.cycle(done, 0, {"hidden": 1000, "out": 1})
    sqlite_rows.cycle(done, 1, {"hidden": 500, "out": 1})
    queued = sqlite_rows.experiment(name="waiting")
    url = ["--server", server.url]

    assert main(["list", *url, "--status", "queued"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:3] == ["id", "status", "name"] and len(listing) == 2
    assert listing[1].split()[:3] == [str(queued), "queued", "waiting"]

    assert main(["show", str(done), *url]) == 0
    shown = capsys.readouterr().out
    assert f"page: {server.url}/experiments/{done}" in shown
    assert "stopped: tolerance" in shown and "kept model: cycle 0: widths hidden 1000, out 1" in shown
    assert "final" in shown and "kept" in shown

    assert main(["cancel", str(queued), *url]) == 0
    assert capsys.readouterr().out.strip() == f"experiment {queued}: cancelled"
    assert main(["cancel", str(queued), *url]) == 1  # finished: a conflict
    assert "refused in this state (HTTP 409)" in capsys.readouterr().err

    assert main(["rerun", str(queued), *url]) == 0
    assert "queued: " + server.url + "/experiments/" in capsys.readouterr().out

    assert main(["delete", str(queued), "--yes", *url]) == 0
    assert main(["show", str(queued), *url]) == 1
    assert "not found (HTTP 404)" in capsys.readouterr().err


def test_delete_asks_first_and_keeps_the_experiment_on_no(
    server: LiveServer,
    sqlite_rows: RowFactory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    experiment = sqlite_rows.experiment(status="failed")
    monkeypatch.setattr(sys, "stdin", io.StringIO("n\n"))
    assert main(["delete", str(experiment), "--server", server.url]) == 2
    assert "delete experiment" in capsys.readouterr().err
    assert main(["show", str(experiment), "--server", server.url]) == 0


def test_export_writes_the_file(server: LiveServer, sqlite_rows: RowFactory, tmp_path: Path) -> None:
    experiment = sqlite_rows.experiment(status="succeeded", final_cycle=0)
    sqlite_rows.cycle(experiment, 0, {"hidden": 1000, "out": 1})
    out = tmp_path / "cycles.csv"
    assert main(["export", str(experiment), "--format", "csv", "-o", str(out), "--server", server.url]) == 0
    header = out.read_text().splitlines()[0]
    assert header.startswith("cycle,status,final,pruned_from,width_hidden,width_out,params")
    document = tmp_path / "all.json"
    assert (
        main(["export", str(experiment), "--format", "json", "-o", str(document), "--server", server.url])
        == 0
    )
    assert json.loads(document.read_text())["cycles"][0]["widths"] == {"hidden": 1000, "out": 1}


def test_push_adds_a_local_run_to_the_history(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_cli_exports_imports import _results

    (tmp_path / "results.json").write_text(json.dumps(_results([1000, 30])))
    assert main(["push", str(tmp_path), "--server", server.url, "--tag", "mine"]) == 0
    out = capsys.readouterr().out
    assert f"as experiment 1: {server.url}/experiments/1" in out and "pushed the numbers only" in out
    assert main(["show", "1", "--server", server.url]) == 0
    assert "kept model: cycle 1: widths hidden 30, out 1" in capsys.readouterr().out


def test_the_prunelab_entry_point_lists_and_reports_an_unreachable_server(
    server: LiveServer, sqlite_rows: RowFactory
) -> None:
    sqlite_rows.experiment(name="from the shell")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRUNELAB_")}
    env["PRUNELAB_SERVER"] = server.url
    listing = subprocess.run([*PRUNELAB, "list"], env=env, capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert "from the shell" in listing.stdout
    env["PRUNELAB_SERVER"] = "http://127.0.0.1:9"
    down = subprocess.run([*PRUNELAB, "list"], env=env, capture_output=True, text=True, timeout=60)
    assert down.returncode == 1
    assert down.stderr.startswith("prunelab: error: cannot reach the server at http://127.0.0.1:9")
    assert len(down.stderr.strip().splitlines()) == 1
