"""The crossover density of a dense layer: the highest kernel density at which a sparse product still
beats the dense one (Çallı §2.2.1).

Usage:
    python benchmarks/sparse_crossover.py [--fan-in 784] [--units 300] [--batches 1,64] [--runs 200]
        [--warmup 20] [--threads 1] [--no-litert] [--out FILE]

Sweeps densities from 1 % to 100 % for ``tf.linalg.matmul`` against ``tf.sparse.sparse_dense_matmul``
and, under LiteRT, for a one-layer TFLite model stored dense against stored sparse (random sparsity,
and 1×4 blocks as TFLite's sparse FULLY_CONNECTED kernel wants them). Every sweep interleaves dense and
sparse, round by round, at every density. TensorFlow runs with ``--threads`` intra-op threads, LiteRT
with as many interpreter threads. Prints one table per sweep and writes JSON (default
``runs/benchmarks/sparse_crossover.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

from worker.engine.sparse_bench import (  # noqa: E402
    DEFAULT_DENSITIES,
    DEFAULT_MARGIN,
    SparseSweep,
    sweep_litert,
    sweep_tensorflow,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "runs" / "benchmarks"


def _print(sweep: SparseSweep) -> None:
    crossover = sweep.crossover
    found = f"{crossover:.0%}" if crossover is not None else "none (sparse never faster)"
    print(
        f"\n{sweep.backend}, {sweep.fan_in}x{sweep.units}, batch {sweep.batch}, "
        f"blocks of {sweep.block_rows}, {sweep.runs} rounds: crossover {found}"
    )
    sizes = sweep.points[0].dense_bytes is not None
    header = f"{'density':>8} {'non-zeros':>9} {'dense µs':>9} {'sparse µs':>10} {'speed-up':>8}"
    print(header + (f" {'dense kB':>8} {'sparse kB':>9}" if sizes else ""))
    for point in sweep.points:
        line = (
            f"{point.density:>8.0%} {point.nonzeros:>9,} {point.dense_us:>9.1f} {point.sparse_us:>10.1f} "
            f"{point.speedup:>7.2f}x"
        )
        if point.dense_bytes is not None and point.sparse_bytes is not None:
            line += f" {point.dense_bytes / 1000:>8.1f} {point.sparse_bytes / 1000:>9.1f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--fan-in", type=int, default=784)
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-litert", action="store_true", help="skip the LiteRT sweeps")
    parser.add_argument("--out", type=Path, default=OUT_DIR / "sparse_crossover.json")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b]

    # before TensorFlow runs its first op, or the setting is refused
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    sweeps: list[SparseSweep] = []
    shape = (args.fan_in, args.units)
    for batch in batches:
        sweeps.append(sweep_tensorflow(*shape, batch, DEFAULT_DENSITIES, args.runs, args.warmup))
        _print(sweeps[-1])
        if not args.no_litert:
            for block_rows in (1, 4):
                sweep = sweep_litert(
                    *shape, batch, DEFAULT_DENSITIES, args.runs, args.warmup, args.threads, block_rows
                )
                sweeps.append(sweep)
                _print(sweep)

    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "tensorflow": tf.__version__,
        "threads": args.threads,
        "margin": DEFAULT_MARGIN,
        "sweeps": [sweep.summary() for sweep in sweeps],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
