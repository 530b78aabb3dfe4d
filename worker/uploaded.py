"""What a spec names by upload id, fetched for the worker: the data set's arrays and the model's weights.

The bytes come from the database's upload store by id (never a path from the spec) and must hash to the
SHA-256 the spec recorded at submit. The uploaded model is rebuilt from the spec's layers (so the engine's
penalties and names apply) and, with ``weights: trained``, given the file's weights layer by layer before
cycle 0. Imports Keras: import this module only inside the task body.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import keras
import numpy as np
from sqlalchemy.orm import Session, sessionmaker

from backend.db import session_scope
from backend.models import UploadKind
from backend.service.errors import NotFound
from backend.service.uploads import stored_bytes
from prunespec.spec import ExperimentSpec, NpzDataset
from worker.engine.build import build_model, read_model, set_layer_weights
from worker.engine.data import Dataset, DatasetError
from worker.engine.data.load import load_dataset


class UploadUnusable(DatasetError):
    """An upload a spec names is gone, changed, or does not fit the model (fails the experiment)."""


def _fetch(sessions: sessionmaker[Session], kind: UploadKind, upload_id: int, expected: str | None) -> bytes:
    """An upload's bytes, checked against the hash the spec recorded.

    Raises:
        UploadUnusable: it was deleted, or its bytes do not hash to ``expected``.
    """
    try:
        with session_scope(sessions) as session:
            content, sha256 = stored_bytes(session, upload_id, kind)
    except NotFound:
        raise UploadUnusable(f"uploaded {kind.value} {upload_id} no longer exists") from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != sha256 or (expected is not None and actual != expected):
        raise UploadUnusable(
            f"uploaded {kind.value} {upload_id} does not hold the bytes this experiment was submitted with "
            "(SHA-256 mismatch)"
        )
    return content


def uploaded_dataset(sessions: sessionmaker[Session], spec: NpzDataset, seed: int) -> Dataset:
    """The arrays of an uploaded .npz data set (``dataset: {name: npz, id: …}``).

    Raises:
        UploadUnusable: the upload is gone or changed.
        DatasetError: the arrays do not make a data set (e.g. more samples asked for than there are).
    """
    assert spec.id is not None
    content = _fetch(sessions, UploadKind.dataset, spec.id, spec.sha256)
    with tempfile.TemporaryDirectory(prefix="prunelab-data-") as directory:
        (Path(directory) / "upload.npz").write_bytes(content)
        local = spec.model_copy(update={"path": "upload.npz", "id": None, "sha256": None})
        data = load_dataset(local, seed=seed, data_dirs=[Path(directory)])
    return Dataset(
        data.x_train,
        data.y_train,
        data.x_test,
        data.y_test,
        data.num_classes,
        data.description.replace("from upload.npz", f"from uploaded data set {spec.id}"),
    )


def initial_weights(
    sessions: sessionmaker[Session], spec: ExperimentSpec
) -> dict[str, list[np.ndarray]] | None:
    """The weights cycle 0 starts from when the spec names an uploaded model with ``weights: trained``.

    Returns:
        The file's weights by spec layer name, checked against the spec's layers; None when there is
        nothing to load (no uploaded model, or ``weights: reinitialize``).

    Raises:
        UploadUnusable: the upload is gone or changed, or its weights do not fit the spec's layers.
    """
    reference = spec.uploaded_model
    if reference is None or reference.weights != "trained":
        return None
    content = _fetch(sessions, UploadKind.model, reference.id, reference.sha256)
    with tempfile.TemporaryDirectory(prefix="prunelab-model-") as directory:
        path = Path(directory) / "upload.keras"
        path.write_bytes(content)
        uploaded = keras.saving.load_model(path, compile=False, safe_mode=True)
    try:
        weights = read_model(uploaded).weights  # by spec name: Keras names are sanitised when read
        set_layer_weights(build_model(spec.model), weights)  # every layer's weights fit the spec's
    except (KeyError, ValueError, TypeError) as exc:
        raise UploadUnusable(
            f"uploaded model {reference.id}'s weights do not fit the spec's layers ({exc})"
        ) from None
    return weights
