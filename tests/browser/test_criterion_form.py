"""The New form lists the criteria with the labels the API publishes, and the weight criteria's fields."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from dashboard_rows import Dashboard, lenet_spec

from prunespec.criteria import LABELS
from prunespec.spec import ExperimentSpec

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


def test_the_spec_view_shows_rules_target_and_bn_l1_with_api_labels(
    page: Any, visit: Visit, dashboard: Dashboard
) -> None:
    data = lenet_spec(f"rules-{uuid.uuid4().hex[:6]}").model_dump(mode="json")
    data["training"]["bn_l1"] = 0.0001
    data["pruning"] |= {
        "rules": [
            {"layers": ["fc2"], "criterion": {"type": "weight_norm", "norm": "l2"}, "max_fraction": 0.3}
        ],
        "target": {"flops": 0.5},
    }
    experiment_id = dashboard.history.finished(ExperimentSpec.model_validate(data), cycles=1, tflite=False)
    visit(f"/experiments/{experiment_id}")
    body = page.locator("#spec-body")
    expect(body).to_contain_text(
        "fc2: Weight norm (Li et al.), threshold = 0.05, fraction = 0, norm = l2, max fraction 0.3"
    )
    expect(body).to_contain_text("50 % of cycle 0's FLOPs")
    expect(body).to_contain_text("L1 on BN γ")
    # the criterion chart's hint names each layer's rule beside the default criterion
    expect(page.get_by_role("region", name="Pruning criterion")).to_contain_text(
        "APoZ (Hu et al.), k = 1 (rules: fc2: Weight norm (Li et al.))"
    )
