"""Datasets for the engine: generated sums, MNIST and Fashion-MNIST from a data directory, user .npz files.

Everything here is NumPy: no TensorFlow, no downloads. Image files are looked up in the data
directories (``$PRUNELAB_DATA_DIR`` if set, then Keras's cache ``~/.keras/datasets``); the first
directory holding usable files wins. MNIST is read from Keras's ``mnist.npz``, or from the four IDX
files in ``<dir>/mnist/`` or directly in ``<dir>``; Fashion-MNIST from the four IDX files in
``<dir>/fashion-mnist/`` only (the file names are the same as MNIST's, so loose files count as
MNIST). The IDX files are parsed here. Where only the 10,000-image test pair exists it is split
deterministically, the first 80 % for training and the last 20 % for testing (8,000/2,000).

Every failure a user can cause raises :class:`DatasetError`, whose message says what is wrong and how
to fix it.

Modules, one job each:

- ``types``: :class:`Dataset`, :class:`DatasetError`, the data directories.
- ``generated``: the ``sum`` dataset.
- ``idx``: IDX file parsing.
- ``images``: finding and loading MNIST and Fashion-MNIST (IDX files or Keras's ``mnist.npz``).
- ``npz``: user .npz datasets.
- ``fit``: :func:`fit_to_model`.
- ``load``: :func:`load_dataset` and :func:`available_datasets`.
"""

from worker.engine.data.fit import fit_to_model
from worker.engine.data.idx import (
    IMAGE_CLASSES,
    IMAGE_SIZE,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    read_idx_images,
    read_idx_labels,
)
from worker.engine.data.images import (
    IDX_FILES,
    KERAS_MNIST_NPZ,
    T10K_TEST_FRACTION,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
)
from worker.engine.data.load import available_datasets, load_dataset
from worker.engine.data.npz import NPZ_KEYS
from worker.engine.data.types import ENV_DATA_DIR, Dataset, DatasetError, default_data_dirs

__all__ = [
    "ENV_DATA_DIR",
    "IDX_FILES",
    "IMAGE_CLASSES",
    "IMAGE_SIZE",
    "IMAGES_MAGIC",
    "KERAS_MNIST_NPZ",
    "LABELS_MAGIC",
    "NPZ_KEYS",
    "T10K_TEST_FRACTION",
    "TEST_IMAGES",
    "TEST_LABELS",
    "TRAIN_IMAGES",
    "TRAIN_LABELS",
    "Dataset",
    "DatasetError",
    "available_datasets",
    "default_data_dirs",
    "fit_to_model",
    "load_dataset",
    "read_idx_images",
    "read_idx_labels",
]
