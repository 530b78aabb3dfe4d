"""Stop reasons: one definition the engine, the worker, the service and the clients share."""

from __future__ import annotations

from backend import client_format
from prunespec.stops import StopReason, describe


def test_every_reason_has_words_and_an_unknown_one_is_shown_as_it_is() -> None:
    for reason in StopReason:
        assert describe(reason.value) == reason.description and reason.description
    assert describe("lease_lost") == "lease_lost"
    assert describe("time_limit").startswith("stopped at the worker's wall-time limit")


def test_the_client_names_the_reason_with_its_words() -> None:
    lines = client_format.outcome_lines({"stop_reason": "time_limit", "cycles": []})
    assert any("stopped: time_limit (stopped at the worker's wall-time limit" in line for line in lines)
