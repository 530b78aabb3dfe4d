"""What the client verbs print: counts, metrics and widths rounded one way, the cycles table, and an
experiment's outcome (stop reason, the rejected cycles, the kept cycle's numbers). Pure: dicts in,
lines out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prunespec.stops import describe


def metric_text(value: Any) -> str:
    """A metric or loss, 4 significant digits (``n/a`` when missing)."""
    return f"{value:.4g}" if isinstance(value, int | float) else "n/a"


def count_text(value: Any) -> str:
    """A parameter or FLOP count, exact with thousands separators (``n/a`` when missing)."""
    return f"{int(value):,}" if isinstance(value, int | float) else "n/a"


def widths_text(widths: dict[str, int]) -> str:
    """``name width`` per layer, comma-separated."""
    return ", ".join(f"{name} {width}" for name, width in widths.items()) or "none"


def kept_cycle(detail: dict[str, Any]) -> dict[str, Any] | None:
    """The cycle whose model is the result: ``final_cycle``, else the newest accepted cycle."""
    cycles: list[dict[str, Any]] = detail.get("cycles") or []
    final = detail.get("final_cycle")
    for cycle in cycles:
        if cycle.get("index") == final:
            return cycle
    accepted = [cycle for cycle in cycles if cycle.get("accepted", True)]
    return accepted[-1] if accepted else None


def outcome_lines(detail: dict[str, Any]) -> list[str]:
    """What an experiment ended with: stop reason, the rejected cycles, the kept cycle's numbers.

    Args:
        detail: ``GET /api/experiments/{id}``'s body.

    Returns:
        Lines such as ``kept model: cycle 5 — widths hidden 18, out 1; params 1,234; FLOPs 2,400;
        val accuracy 0.9871``.
    """
    lines = [f"experiment {detail.get('id')} {detail.get('status')}"]
    reason = detail.get("stop_reason")
    if reason:
        lines.append(f"stopped: {reason} ({describe(reason)})")
    if detail.get("error"):
        lines.append(f"error: {detail['error']}")
    cycles: list[dict[str, Any]] = detail.get("cycles") or []
    kept = kept_cycle(detail)
    rejected = [str(cycle.get("index")) for cycle in cycles if not cycle.get("accepted", True)]
    if rejected:
        kept_text = f"the kept model is cycle {kept['index']}'s" if kept else "no cycle was kept"
        named = f"cycle {rejected[0]} was" if len(rejected) == 1 else f"cycles {', '.join(rejected)} were"
        lines.append(f"{named} rejected; {kept_text}")
    if kept is not None:
        metric = kept.get("metric_name") or detail.get("metric_name") or "metric"
        lines.append(
            f"kept model: cycle {kept['index']}: widths {widths_text(kept.get('widths') or {})}; "
            f"params {count_text(kept.get('params'))}; FLOPs {count_text(kept.get('flops'))}; "
            f"val {metric} {metric_text(kept.get('val_metric'))}"
        )
    return lines


def cycles_table(cycles: Sequence[dict[str, Any]], final: int | None) -> list[str]:
    """One aligned row per cycle: widths, params, FLOPs, val loss, val metric, kept/rejected/final; a cycle
    pruned from an earlier cycle than the one before it (a back-off) says which."""
    metric = next((c.get("metric_name") for c in cycles if c.get("metric_name")), "metric")
    header = ["cycle", "status", "widths", "params", "FLOPs", "val loss", f"val {metric}"]
    rows = [header]
    for cycle in cycles:
        state = "rejected" if not cycle.get("accepted", True) else "kept"
        if cycle.get("index") == final:
            state = "final"
        index, source = cycle.get("index"), cycle.get("pruned_from")
        if isinstance(index, int) and isinstance(source, int) and source != index - 1:
            state += f" (from {source})"
        rows.append(
            [
                str(cycle.get("index")),
                state,
                widths_text(cycle.get("widths") or {}),
                count_text(cycle.get("params")),
                count_text(cycle.get("flops")),
                metric_text(cycle.get("val_loss")),
                metric_text(cycle.get("val_metric")),
            ]
        )
    return aligned(rows, left={1, 2})


def aligned(rows: Sequence[Sequence[str]], left: set[int]) -> list[str]:
    """Rows as lines with aligned columns; columns in ``left`` are left-aligned, the rest right."""
    sizes = [max(len(row[col]) for row in rows) for col in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(size) if col in left else cell.rjust(size)
            for col, (cell, size) in enumerate(zip(row, sizes, strict=True))
        ).rstrip()
        for row in rows
    ]
