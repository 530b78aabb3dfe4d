"""The New page shows the spec's estimates against the server's limits, and marks one over a limit
before anything is submitted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None

Visit = Callable[[str], Any]


def _huge_spec() -> str:
    """255 dense layers of 65,536 units: 1.09e12 parameters and 2.2e12 FLOPs, far over 5e7 and 2e10."""
    layers = [{"type": "dense", "units": 65536, "activation": "relu"}] * 255 + [{"type": "dense", "units": 1}]
    spec = {"name": "huge", "model": {"input_shape": [2], "layers": layers}, "dataset": {"name": "sum"}}
    return yaml.safe_dump(spec)


def test_the_preview_lists_every_limit_and_marks_the_one_a_spec_exceeds(page: Any, visit: Visit) -> None:
    visit("/new")
    limits = page.locator("#preview-limits li")
    expect(limits).to_have_count(4)  # the form's default spec, checked as it is drawn
    expect(page.locator("#preview-limits li.over")).to_have_count(0)
    expect(limits.nth(3)).to_contain_text("Wall time")
    expect(limits.nth(3)).to_contain_text("stops after 4 h 00 min")

    page.click("#tab-yaml")
    page.fill("#yaml-text", _huge_spec())

    over = page.locator("#preview-limits li.over")
    expect(over).to_have_count(2)
    expect(over.nth(0)).to_contain_text("Parameters")
    expect(over.nth(0)).to_contain_text("1.1T of at most 50M · over the limit")
    expect(over.nth(1)).to_contain_text("FLOPs / example")
    expect(page.locator("#preview-state")).to_have_text("over 2 limits of this server")
