"""The New page uploads a model and a data set (file picker, progress, the server's summary), and the
form then names them by id: the preview costs the uploaded model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from uploads_files import small_dense_keras, tiny_npz

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or, in CI, fails) with the reason
    expect = None

Visit = Callable[[str], Any]
INGEST_MS = 90_000


def test_an_uploaded_model_and_data_set_are_summarised_and_used_by_the_form(
    page: Any, visit: Visit, tmp_path: Path
) -> None:
    model = small_dense_keras(tmp_path / "page.keras", features=4, classes=3)
    data = tmp_path / "page.npz"
    data.write_bytes(tiny_npz(seed=7))
    visit("/new")

    page.set_input_files("#upload-file-model", str(model))
    # the ingest subprocess starts Python and Keras: seconds on a shared machine
    expect(page.locator("#upload-status-model")).to_contain_text("Stored as #", timeout=INGEST_MS)
    expect(page.locator("#upload-summary-model")).to_contain_text("prunable: hidden")
    expect(page.locator("#upload-summary-model")).to_contain_text("fixed, its units are the model's outputs")

    page.set_input_files("#upload-file-dataset", str(data))
    expect(page.locator("#upload-summary-dataset")).to_contain_text(
        "18 train / 6 test examples", timeout=INGEST_MS
    )

    expect(page.locator("#preview-params")).to_have_text("51")  # 4·6 + 6 + 6·3 + 3, read from the file
    model_id = page.locator("#upload-pick-model").input_value()
    data_id = page.locator("#upload-pick-dataset").input_value()
    page.fill("#f-spec-name", "byo")
    page.click("#submit")
    page.wait_for_url("**/experiments/*")
    experiment = page.url.rsplit("/", 1)[1]
    visit(f"/new?from={experiment}")  # a clone keeps the uploads it used
    expect(page.locator("#upload-pick-model")).to_have_value(model_id)
    expect(page.locator("#upload-pick-dataset")).to_have_value(data_id)

    refused = tmp_path / "broken.keras"
    refused.write_bytes(b"not a zip")
    page.set_input_files("#upload-file-model", str(refused))
    expect(page.locator("#upload-status-model")).to_contain_text(
        "Refused: the .keras file is not a readable zip", timeout=INGEST_MS
    )
