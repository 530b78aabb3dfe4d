"""How an experiment process runs TensorFlow: its thread pools (from the settings) and the device it uses.

TensorFlow fixes its thread pools when it first runs an op, so :func:`configure_threads` runs before any
TensorFlow work in the process; later calls (a second experiment in the same worker child) keep what
the first one set. By default each experiment process gets ``cores // experiments_per_machine`` threads
in each pool, so N experiments on one machine share its cores instead of each taking all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from backend.settings import Settings
from worker.engine.cores import machine_cores


@dataclass(frozen=True)
class Runtime:
    """What an experiment ran with.

    Attributes:
        intra_op_threads: TensorFlow's intra-op pool (threads inside one op).
        inter_op_threads: TensorFlow's inter-op pool (ops run side by side).
        device: where TensorFlow places ops: "GPU:0 (<name>)" when a GPU is visible, else "CPU".
    """

    intra_op_threads: int
    inter_op_threads: int
    device: str

    def versions(self, tf_version: str, keras_version: str) -> tuple[str, str]:
        """The two version strings an experiment records, each with its part of the environment.

        TensorFlow's carries the threads ("2.21.0 threads 8/8"), Keras's the device ("3.15.1 on CPU"),
        each cut to the 32 characters the columns hold.
        """
        threads = f"{tf_version} threads {self.intra_op_threads}/{self.inter_op_threads}"
        return threads[:32], f"{keras_version} on {self.device}"[:32]


def thread_counts(settings: Settings, cores: int | None = None) -> tuple[int, int]:
    """(intra-op, inter-op) threads for one experiment process: the settings, else its share of cores."""
    share = max(1, (cores or machine_cores()) // settings.experiments_per_machine)
    return settings.tf_intra_op_threads or share, settings.tf_inter_op_threads or share


def configure_threads(settings: Settings) -> tuple[int, int]:
    """Set TensorFlow's thread pools from the settings, once per process.

    Returns:
        The pools TensorFlow uses now: the settings' on the first call, whatever was fixed before
        otherwise (TensorFlow cannot change them once it has run an op).
    """
    import tensorflow as tf

    intra, inter = thread_counts(settings)
    threading = tf.config.threading
    try:
        threading.set_intra_op_parallelism_threads(intra)
        threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # TensorFlow already ran: keep its pools
        pass
    # 0 means TensorFlow's own choice, one thread per core
    cores = machine_cores()
    return (
        threading.get_intra_op_parallelism_threads() or cores,
        threading.get_inter_op_parallelism_threads() or cores,
    )


def device() -> str:
    """The device TensorFlow places ops on by default: the first GPU when one is visible, else the CPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "")
    return f"GPU:0 ({name})" if name else "GPU:0"


def prepare(settings: Settings) -> Runtime:
    """Configure this process's threads (before any TensorFlow work) and describe where it runs."""
    intra, inter = configure_threads(settings)
    return Runtime(intra_op_threads=intra, inter_op_threads=inter, device=device())
