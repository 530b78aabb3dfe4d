"""The New form lists the criteria with the labels the API publishes, and the weight criteria's fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prunespec.criteria import LABELS

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None

Visit = Callable[[str], Any]


def test_the_criterion_select_shows_the_api_labels_and_weight_norm_fields(page: Any, visit: Visit) -> None:
    visit("/new")
    select = page.locator("#f-spec-pruning-criterion-type")
    for kind, label in LABELS.items():
        expect(select.locator(f"option[value='{kind}']")).to_have_text(label)
    page.select_option("#f-spec-pruning-criterion-type", "weight_norm")
    expect(page.locator("#f-spec-pruning-criterion-norm")).to_be_visible()
    expect(page.locator("#f-spec-pruning-criterion-fraction")).to_be_visible()
    expect(page.locator("#f-spec-pruning-criterion-k")).to_be_hidden()
    page.select_option("#f-spec-pruning-criterion-type", "apoz")
    expect(page.locator("#f-spec-pruning-criterion-norm")).to_be_hidden()
