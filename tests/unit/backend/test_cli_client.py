"""The command line's HTTP client and verbs without a server: where the server is, what each refusal
says, the headers every request carries, the outcome lines, push's request body and ``--version``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from backend.cli import main
from backend.client import EXIT_REFUSED, EXIT_USAGE, ClientError, PrunelabClient, refusal, server_url
from backend.client_cli import MAX_PUSH_MODEL_BYTES, push_body
from backend.client_format import cycles_table, outcome_lines
from backend.version import package_version


def test_server_url_reads_prunelab_host_and_port() -> None:
    assert server_url(None, {"PRUNELAB_HOST": "10.0.0.5", "PRUNELAB_PORT": "8123"}) == "http://10.0.0.5:8123"
    assert server_url(None, {"PRUNELAB_PORT": "9001"}) == "http://127.0.0.1:9001"
    assert server_url(None, {}) == "http://127.0.0.1:8000"


def test_server_url_reaches_a_wildcard_bind_through_loopback() -> None:
    assert server_url(None, {"PRUNELAB_HOST": "0.0.0.0", "PRUNELAB_PORT": "80"}) == "http://127.0.0.1:80"
    assert server_url(None, {"PRUNELAB_HOST": "::"}) == "http://[::1]:8000"


def test_server_option_wins_over_prunelab_server_which_wins_over_host_and_port() -> None:
    env = {"PRUNELAB_SERVER": "https://lab.example/", "PRUNELAB_PORT": "1"}
    assert server_url(None, env) == "https://lab.example"
    assert server_url("lab2:8000", env) == "http://lab2:8000"


def _answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers, request=httpx.Request("GET", "http://x/"))


@pytest.mark.parametrize(
    ("status", "body", "code", "words"),
    [
        (401, {"detail": "sign in", "code": "unauthorized"}, EXIT_REFUSED, "PRUNELAB_TOKEN"),
        (
            403,
            {"detail": "not yours", "code": "forbidden"},
            EXIT_REFUSED,
            "not allowed (HTTP 403): not yours",
        ),
        (404, {"detail": "experiment 9 does not exist", "code": "not_found"}, EXIT_REFUSED, "experiment 9"),
        (409, {"detail": "running", "code": "conflict"}, EXIT_REFUSED, "refused in this state"),
        (413, {"detail": "over 1 MiB", "code": "too_large"}, EXIT_USAGE, "too large"),
        (500, {"detail": "boom", "code": "error"}, EXIT_REFUSED, "server error (HTTP 500): boom"),
        (503, {"detail": "queue down", "code": "queue_unavailable"}, EXIT_REFUSED, "queue down"),
    ],
)
def test_each_refusal_is_one_line_with_its_exit_code(status: int, body: Any, code: int, words: str) -> None:
    error = refusal(_answer(status, body))
    assert error.exit_code == code
    assert words in str(error) and "\n" not in str(error)


def test_a_422_names_every_invalid_field_on_one_line() -> None:
    body = {
        "detail": [
            {"loc": ["body", "spec", "name"], "field": "spec.name", "msg": "too short", "type": "x"},
            {"loc": ["body", "tags", 0], "field": "tags.0", "msg": "bad tag", "type": "y"},
        ],
        "code": "invalid_input",
    }
    error = refusal(_answer(422, body))
    assert error.exit_code == EXIT_USAGE
    assert str(error) == "invalid input (HTTP 422): spec.name: too short; tags.0: bad tag"


def test_a_429_says_when_to_try_again() -> None:
    error = refusal(_answer(429, {"detail": "slow down", "code": "rate"}, {"Retry-After": "7"}))
    assert error.exit_code == EXIT_REFUSED and "try again in 7 s" in str(error)


def test_requests_carry_the_token_and_state_changes_a_json_body() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": 1, "status": "cancelled"})

    client = PrunelabClient("http://lab:1", token="s3cret", transport=httpx.MockTransport(answer))
    client.get_json("/api/experiments")
    client.post_json("/api/experiments/1/cancel")
    client.delete("/api/experiments/1")
    assert [r.headers["Authorization"] for r in seen] == ["Bearer s3cret"] * 3
    assert [(r.method, r.headers.get("Content-Type"), r.content) for r in seen[1:]] == [
        ("POST", "application/json", b"{}"),
        ("DELETE", "application/json", b"{}"),
    ]


def test_no_token_no_authorization_header() -> None:
    seen: list[httpx.Request] = []
    transport = httpx.MockTransport(lambda r: seen.append(r) or httpx.Response(200, json={}))
    PrunelabClient("http://lab:1", transport=transport).get_json("/api/health")
    assert "Authorization" not in seen[0].headers


def test_an_unreachable_server_is_exit_1_with_the_address_and_how_to_choose_another(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("Connection refused", request=request)

    client = PrunelabClient("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    with pytest.raises(ClientError) as caught:
        client.get_json("/api/experiments")
    assert caught.value.exit_code == EXIT_REFUSED
    assert "http://127.0.0.1:9" in str(caught.value) and "PRUNELAB_SERVER" in str(caught.value)


def _detail(**changes: Any) -> dict[str, Any]:
    cycles = [
        {
            "index": 0,
            "widths": {"ip1": 500, "out": 10},
            "params": 431080,
            "flops": 862160,
            "val_metric": 0.98912,
            "metric_name": "accuracy",
            "accepted": True,
        },
        {
            "index": 1,
            "widths": {"ip1": 18, "out": 10},
            "params": 14311,
            "flops": 28622,
            "val_metric": 0.98123,
            "metric_name": "accuracy",
            "accepted": True,
        },
        {
            "index": 2,
            "widths": {"ip1": 9, "out": 10},
            "params": 7150,
            "flops": 14300,
            "val_metric": 0.91,
            "metric_name": "accuracy",
            "accepted": False,
        },
    ]
    detail = {
        "id": 4,
        "status": "succeeded",
        "stop_reason": "tolerance",
        "final_cycle": 1,
        "metric_name": "accuracy",
        "cycles": cycles,
        "error": None,
    }
    detail.update(changes)
    return detail


def test_outcome_names_the_stop_reason_the_rejected_cycle_and_the_kept_model() -> None:
    lines = outcome_lines(_detail())
    assert lines[0] == "experiment 4 succeeded"
    assert lines[1].startswith("stopped: tolerance (")
    assert lines[2] == "cycle 2 was rejected; the kept model is cycle 1's"
    assert lines[3] == (
        "kept model: cycle 1: widths ip1 18, out 10; params 14,311; FLOPs 28,622; val accuracy 0.9812"
    )


def test_a_back_off_run_names_every_rejected_cycle_and_where_the_retry_came_from() -> None:
    detail = _detail(stop_reason="max_cycles", final_cycle=3)
    first, kept, rejected = detail["cycles"]
    retried = {**kept, "index": 3, "widths": {"ip1": 14, "out": 10}, "accepted": True, "pruned_from": 1}
    detail["cycles"] = [first, {**kept, "pruned_from": 0}, {**rejected, "pruned_from": 1}, retried]
    lines = outcome_lines(detail)
    assert lines[2] == "cycle 2 was rejected; the kept model is cycle 3's"
    table = cycles_table(detail["cycles"], final=3)
    assert [line.split()[1:3] for line in table[1:]] == [
        ["kept", "ip1"],
        ["kept", "ip1"],
        ["rejected", "ip1"],
        ["final", "(from"],
    ]
    assert "final (from 1)" in table[4]
    detail["cycles"][3]["accepted"] = False  # the retry rejected too: cycle 1 stays the result
    detail.update(stop_reason="tolerance", final_cycle=1)
    assert outcome_lines(detail)[2] == "cycles 2, 3 were rejected; the kept model is cycle 1's"


def test_outcome_of_a_run_that_ended_on_an_accepted_cycle_mentions_no_rejection() -> None:
    detail = _detail(stop_reason="max_cycles", final_cycle=1)
    detail["cycles"] = detail["cycles"][:2]
    lines = outcome_lines(detail)
    assert not any("rejected" in line for line in lines)
    assert lines[-1].startswith("kept model: cycle 1:")


def _run_dir(tmp_path: Path, model: bytes | None) -> Path:
    (tmp_path / "results.json").write_text(json.dumps({"spec": {}, "stop_reason": "x", "cycles": []}))
    if model is not None:
        (tmp_path / "final.keras").write_bytes(model)
    return tmp_path


def test_push_uploads_a_small_final_model_and_says_so(tmp_path: Path) -> None:
    body, note = push_body(_run_dir(tmp_path, b"PK\x03\x04model"), "ana", ["a"], "n")
    assert base64.b64decode(body["final_model"]) == b"PK\x03\x04model"
    assert body["owner"] == "ana" and body["tags"] == ["a"] and "uploaded final.keras" in note


def test_push_skips_a_large_final_model_and_says_so(tmp_path: Path) -> None:
    body, note = push_body(_run_dir(tmp_path, b"PK" + bytes(MAX_PUSH_MODEL_BYTES)), "ana", [], "")
    assert "final_model" not in body and "was not uploaded" in note


def test_push_of_a_directory_without_results_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["push", str(tmp_path), "--server", "http://127.0.0.1:9"]) == EXIT_USAGE
    assert "results.json: no such file" in capsys.readouterr().err


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"prunelab {package_version()}"


def test_a_malformed_id_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["show", "1.0"])
    assert done.value.code == EXIT_USAGE
