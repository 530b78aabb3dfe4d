"""Keep TensorFlow's start-up and retracing noise off the terminal unless asked for (``--verbose``).

TensorFlow writes from C++ before Python can configure anything ("failed call to cuInit: ... CUDA error",
oneDNN and CPU-feature notices) and logs "triggered tf.function retracing" warnings from Python. Quieting
them takes three steps: ``TF_CPP_MIN_LOG_LEVEL=3`` in the environment before TensorFlow loads (children
inherit it), the ``tensorflow`` and ``absl`` Python loggers at ERROR, and, for the lines its native
libraries print while loading, the process's standard-error descriptor pointed at ``/dev/null`` for the
duration of the import only.

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

#: Set to ``1`` (by ``--verbose``) to keep every TensorFlow message; child processes inherit it.
VERBOSE_ENV = "PRUNELAB_VERBOSE"
#: Python loggers TensorFlow and Keras write through.
NOISY_LOGGERS = ("tensorflow", "absl", "h5py")


def verbose_requested() -> bool:
    """True when ``$PRUNELAB_VERBOSE`` asks for TensorFlow's messages."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


def quiet_environment(verbose: bool = False) -> None:
    """Before TensorFlow loads: its C++ log level, its Python loggers and retracing warnings.

    Args:
        verbose: keep every message (and tell child processes so). Default False.
    """
    if verbose or verbose_requested():
        os.environ[VERBOSE_ENV] = "1"
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=r".*retracing.*")


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Inside the block, whatever native code writes to file descriptor 2 is discarded."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (a daemon): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_tensorflow_quietly(verbose: bool = False) -> None:
    """Load TensorFlow and Keras without their start-up lines (unless ``verbose``).

    An import that fails still raises, with its message in the exception.

    Args:
        verbose: import as usual, every message shown. Default False.
    """
    quiet_environment(verbose)
    if verbose_requested() or "tensorflow" in sys.modules:
        return
    with native_stderr_silenced():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
