"""The engine's overheads on a graph preset: statistics pass vs ``model.predict``, training vs ``fit``.

The same paired comparisons as ``benchmarks/reproduce/performance.py``
(``engine_throughput.measure_overheads``) on ``mobilenet-v2-mini`` or ``resnet-mini``: every dependency
group's probes are measured in the one traced pass, so this is where a graph's many probes would show.
Prints the ratios with their per-repeat range.

Run from the repository root::

    python benchmarks/graph_overheads.py --preset mobilenet-v2-mini --train-samples 4000 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine_throughput import measure_overheads  # noqa: E402

from prunespec.spec import ExperimentSpec  # noqa: E402
from worker.engine.data import load_dataset  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "datasets" / "mnist-t10k"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", choices=["mobilenet-v2-mini", "resnet-mini"], default="mobilenet-v2-mini")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--train-samples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spec = ExperimentSpec.model_validate(
        {
            "name": f"overheads-{args.preset}",
            "model": args.preset,
            "dataset": {
                "name": "mnist",
                "target": "labels",
                "train_samples": args.train_samples,
                "test_samples": 1000,
            },
            "training": {"loss": "crossentropy", "first_epochs": args.epochs, "batch_size": 128},
            "pruning": {"stats_samples": min(2000, args.train_samples)},
        }
    )
    data = load_dataset(spec.dataset, seed=0, data_dirs=[args.data_dir], local_paths=True)
    results = measure_overheads(
        spec, data, args.repeats, progress=lambda line: print("  " + line, flush=True)
    )
    print(f"{args.preset}: {args.train_samples} examples, {args.epochs} epoch(s), {args.repeats} repeats")
    for name, entry in results.items():
        ratios = entry["ratios"]
        print(f"  {name}: {entry['ratio']:.2f}× (repeats {min(ratios):.2f}–{max(ratios):.2f})")


if __name__ == "__main__":
    main()
