"""The submit client's event-stream parsing and progress lines (no server needed)."""

from __future__ import annotations

from backend.submit import ServerEvent, _describe, parse_events


def test_parse_events_reads_fields_json_and_comments() -> None:
    lines = [
        ": keep-alive",
        "id: 7",
        "event: epoch",
        'data: {"cycle": 1, "epoch": 0, "loss": 0.5}',
        "",
        "event: status",
        "data: not json",
        "",
        "data: a",
        "data: b",
        "",
    ]
    events = list(parse_events(iter(lines)))
    assert events == [
        ServerEvent("epoch", {"cycle": 1, "epoch": 0, "loss": 0.5}, "7"),
        ServerEvent("status", "not json", None),
        ServerEvent("message", "a\nb", None),
    ]


def test_an_unterminated_event_is_not_emitted() -> None:
    assert list(parse_events(iter(["event: cycle", 'data: {"index": 0}']))) == []


def test_progress_lines_name_cycle_epoch_and_widths() -> None:
    epoch = _describe(ServerEvent("epoch", {"cycle": 2, "epoch": 0, "loss": 0.25, "val_metric": 0.125}))
    assert epoch == "cycle 2 epoch 1: loss 0.25 val 0.125"
    cycle = _describe(
        ServerEvent(
            "cycle",
            {"index": 0, "widths": {"hidden": 1000}, "widths_after": {"hidden": 600}, "val_metric": 0.1},
        )
    )
    assert cycle == "cycle 0 done: hidden 1000→600; val 0.1"
    unchanged = _describe(ServerEvent("cycle", {"index": 3, "widths": {"a": 5}, "widths_after": {"a": 5}}))
    assert unchanged == "cycle 3 done: no units removed; val n/a"
    rejected = _describe(
        ServerEvent(
            "cycle",
            {
                "index": 6,
                "widths": {"ip1": 18},
                "widths_after": {"ip1": 9},
                "val_metric": 0.91234,
                "accepted": False,
            },
        )
    )
    assert rejected == (
        "cycle 6 done: ip1 18→9; val 0.9123 — rejected "
        "(beyond the tolerance; the previous cycle's model is kept)"
    )
    backoff = {"widths": {"ip1": 18}, "widths_after": {"ip1": 18}, "val_metric": 0.5, "accepted": False}
    rejected_mid_run = _describe(ServerEvent("cycle", {**backoff, "index": 3, "pruned_from": 1}))
    assert rejected_mid_run == (
        "cycle 3 done: no units removed; val 0.5 — rejected (beyond the tolerance; cycle 1's model is kept)"
    )
    retried = _describe(
        ServerEvent(
            "cycle",
            {
                "index": 4,
                "widths": {"ip1": 16},
                "widths_after": {"ip1": 12},
                "val_metric": 0.9,
                "pruned_from": 1,
            },
        )
    )
    assert retried == (
        "cycle 4 done: ip1 16→12; val 0.9 — backed off: pruned from cycle 1's model (the last kept) "
        "with a smaller step"
    )
    failed = _describe(ServerEvent("status", {"status": "failed", "error": "boom"}))
    assert failed == "status failed (boom)"
    assert _describe(ServerEvent("message", "x")) is None
