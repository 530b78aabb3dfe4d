"""``prunelab run``'s cycles bar ends full on a normal stop, and TensorFlow's start-up noise stays off the
terminal unless ``--verbose``."""

from __future__ import annotations

import io
import os
import subprocess
import sys

from worker.local_run import ProgressReporter


def test_cycles_bar_counts_the_cycles_that_ran_and_ends_full() -> None:
    stream = io.StringIO()
    reporter = ProgressReporter(15, stream=stream)
    for _ in range(4):
        reporter._cycles.update(1)  # what on_cycle does once per cycle that ran
    reporter.finish()
    reporter.close()
    last = stream.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and "4/4" in last


IMPORT = (
    "from worker.tf_noise import import_tensorflow_quietly as q; q({verbose}); "
    "import tensorflow as tf; tf.constant(1) + 1"
)


def _stderr(verbose: bool) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PRUNELAB_VERBOSE")}
    code = IMPORT.format(verbose=verbose)
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    ).stderr


def test_tensorflow_starts_silently_unless_verbose() -> None:
    assert _stderr(verbose=False) == ""
    noisy = _stderr(verbose=True)
    assert "cudart_stub" in noisy or "cuInit" in noisy


WORKER_LEVELS = (
    "import logging, os, worker.celery_app; "
    "print(os.environ.get('TF_CPP_MIN_LOG_LEVEL'), logging.getLogger('tensorflow').level)"
)


def test_the_worker_quiets_tensorflow_for_its_pool_unless_verbose(tmp_path: object) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PRUNELAB_VERBOSE")}
    env["PRUNELAB_DATA_DIR"] = str(tmp_path)
    quiet = subprocess.run([sys.executable, "-c", WORKER_LEVELS], env=env, capture_output=True, text=True)
    assert quiet.stdout.split() == ["3", "40"], quiet.stderr
    env["PRUNELAB_VERBOSE"] = "1"
    verbose = subprocess.run([sys.executable, "-c", WORKER_LEVELS], env=env, capture_output=True, text=True)
    assert verbose.stdout.split() == ["None", "0"], verbose.stderr
