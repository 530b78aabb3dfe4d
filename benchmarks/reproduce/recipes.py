"""What the reproduction scripts share: recipes as changes to a base spec, and a per-cycle printer."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import keras

from worker.engine.results import CycleResult, EpochRecord

#: Spec keys whose value replaces the base's whole instead of merging into it.
REPLACED_WHOLE = ("criterion", "model")


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``base`` with ``changes`` merged in.

    Nested dicts merge, except a criterion or a model, which are replaced whole; everything else replaces.
    """
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if key not in REPLACED_WHOLE and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


class CyclePrinter:
    """An engine Reporter that prints one line per finished cycle, as ``line`` renders it.

    Args:
        label: printed in brackets before every line (recipe and seed).
        line: the rest of the line for one cycle's result.
    """

    def __init__(self, label: str, line: Callable[[CycleResult], str]):
        self.label = label
        self.line = line

    def on_epoch(self, record: EpochRecord) -> None:
        pass

    def on_cycle(self, result: CycleResult, trained: keras.Model, pruned: keras.Model | None) -> None:
        print(f"  [{self.label}] cycle {result.index}: {self.line(result)}", flush=True)

    def cancelled(self) -> bool:
        return False
