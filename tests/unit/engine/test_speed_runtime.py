"""A worker's TensorFlow threads come from the settings and share the machine's cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from backend.settings import get_settings
from worker.runtime import Runtime, thread_counts

ROOT = Path(__file__).resolve().parents[3]


def test_experiments_on_one_machine_share_its_cores() -> None:
    assert thread_counts(get_settings(experiments_per_machine=1), cores=16) == (16, 16)
    assert thread_counts(get_settings(experiments_per_machine=2), cores=16) == (8, 8)
    assert thread_counts(get_settings(experiments_per_machine=4), cores=2) == (1, 1)
    chosen = get_settings(tf_intra_op_threads=3, tf_inter_op_threads=2, experiments_per_machine=8)
    assert thread_counts(chosen, cores=16) == (3, 2)


def test_the_recorded_versions_carry_threads_and_device_within_their_columns() -> None:
    runtime = Runtime(intra_op_threads=8, inter_op_threads=2, device="GPU:0 (NVIDIA H200 with a long name)")
    tf_version, keras_version = runtime.versions("2.21.0", "3.15.1")
    assert tf_version == "2.21.0 threads 8/2"
    assert keras_version.startswith("3.15.1 on GPU:0") and len(keras_version) <= 32


def test_a_worker_process_sets_tensorflows_threads_before_any_work() -> None:
    script = (
        "import json; from backend.settings import get_settings; from worker.runtime import prepare; "
        "import tensorflow as tf; r = prepare(get_settings()); tf.constant(1.0) + 1.0; "
        "print(json.dumps([r.intra_op_threads, r.inter_op_threads, r.device, "
        "tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads(), "
        "prepare(get_settings(tf_intra_op_threads=5)).intra_op_threads]))"
    )
    env = {
        **os.environ,
        "PRUNELAB_TF_INTRA_OP_THREADS": "3",
        "PRUNELAB_TF_INTER_OP_THREADS": "2",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    intra, inter, device, tf_intra, tf_inter, later = json.loads(done.stdout.strip().splitlines()[-1])
    assert (intra, inter, tf_intra, tf_inter) == (3, 2, 3, 2)
    assert device == "CPU"
    assert later == 3  # once TensorFlow has run, a second experiment in the process keeps the pools
