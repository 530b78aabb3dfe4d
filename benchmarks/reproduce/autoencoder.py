"""Çallı 2017: pruning the MNIST convolutional autoencoder 1-32-64-32-1, through prunelab's engine.

Every recipe starts from the ``mnist-autoencoder`` preset (enc1 32 → enc2 64 → dec1 32 → dec2 1, each a
3×3 stride-2 convolution + BatchNorm + ReLU, tanh output) trained to reconstruct the images of the fixed
8,000/2,000 split of the MNIST t10k files, and alternates train → measure → prune → retrain from the
surviving weights until a cycle removes nothing or the cycle limit is reached. Reconstruction RMSE is
measured on the 2,000 held-out images after every cycle's training.

Recipes (all with the thesis' best regularisation, L2 0.01 on the kernels, and no distortion):

* ``band-k2``: the thesis' rule, variance inside mean(v) ± 2·var(v) of the layer.
* ``band-k20``: the same rule with a band ten times wider, so the per-cycle cap (half a layer) binds.
* ``variance``: variance ≤ 0.01 (nearly flat channels).
* ``count-0``: activation count 0 (channels never active).
* ``apoz-k1``: Hu et al.'s APoZ > mean + 1·std, for comparison.
* ``unpruned``: no pruning, one long cycle: the reference for "RMSE vs the unpruned model" trained as
  many epochs as a long pruning run.

Every run also reports where ``tolerance: 0.02`` (stop when held-out RMSE exceeds cycle 0's by more
than 0.02) would have stopped it: the cycles are identical up to that point, since every cycle reseeds
from ``seed + cycle``.

Run from the repository root::

    python benchmarks/reproduce/autoencoder.py            # the full grid
    python benchmarks/reproduce/autoencoder.py --quick    # one seed, few cycles (smoke test)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from recipes import CyclePrinter, merged  # noqa: E402
from report import record, table, write_figure  # noqa: E402

from prunespec.spec import ExperimentSpec
from worker.engine.cycle import run_cycles  # noqa: E402
from worker.engine.data import Dataset, load_dataset  # noqa: E402
from worker.engine.results import CycleResult, ExperimentResult  # noqa: E402

NAME = "autoencoder"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = (ROOT / ".." / "shared" / "datasets" / "mnist-t10k").resolve()
LAYERS = ("enc1", "enc2", "dec1")
#: Held-out RMSE above cycle 0's that the "within tolerance" column allows.
TOLERANCE = 0.02
UNPRUNED_EPOCHS = 28

#: What every recipe shares (examples/mnist-autoencoder.yaml holds the best recipe as a file).
BASE: dict[str, Any] = {
    "name": "mnist-autoencoder",
    "seed": 0,
    "model": "mnist-autoencoder",
    "dataset": {"name": "mnist", "target": "input", "train_samples": 8000, "test_samples": 2000},
    "training": {
        "optimizer": "adam",
        "learning_rate": 0.001,
        "batch_size": 128,
        "first_epochs": 10,
        "epochs": 3,
        "loss": "rmse",
        "l2": 0.01,
    },
    "pruning": {
        "criterion": {"type": "variance_band", "k": 2.0},
        "max_fraction": 0.5,
        "min_units": 1,
        "distortion": 0.0,
        "max_cycles": 15,
        "stats_samples": 2000,
    },
}

RECIPES: dict[str, dict[str, Any]] = {
    "band-k2": {"pruning": {"criterion": {"type": "variance_band", "k": 2.0}}},
    "band-k20": {"pruning": {"criterion": {"type": "variance_band", "k": 20.0}, "max_cycles": 12}},
    "variance": {"pruning": {"criterion": {"type": "variance", "threshold": 0.01}, "max_cycles": 12}},
    "count-0": {"pruning": {"criterion": {"type": "activation_count", "threshold": 0}, "max_cycles": 12}},
    "apoz-k1": {"pruning": {"criterion": {"type": "apoz", "k": 1.0}, "max_cycles": 12}},
    "unpruned": {
        "training": {"first_epochs": UNPRUNED_EPOCHS},
        "pruning": {"criterion": {"type": "none"}, "max_cycles": 1},
    },
}
DESCRIPTIONS = {
    "band-k2": "variance band mean(v) ± 2·var(v) (the thesis' rule)",
    "band-k20": "variance band mean(v) ± 20·var(v)",
    "variance": "variance ≤ 0.01",
    "count-0": "activation count 0 (never active)",
    "apoz-k1": "APoZ > mean + 1·std (Hu et al.)",
    "unpruned": f"no pruning, {UNPRUNED_EPOCHS} epochs (reference)",
}
SINGLE_SEED = ("unpruned",)


def cycle_line(result: CycleResult) -> str:
    """One cycle, as the run prints it."""
    return (
        f"{channels(result.widths)} -> {channels(result.widths_after)}  params {result.params:,}  "
        f"RMSE {result.val_metric:.4f}  {result.train_seconds:.0f} s"
    )


def channels(widths: dict[str, int]) -> str:
    """Channels input-to-output as the thesis writes them, e.g. ``1-32-64-32-1``."""
    return "-".join(["1", *(str(widths[n]) for n in LAYERS), "1"])


def cycle_row(cycle: CycleResult) -> dict[str, Any]:
    return {
        "cycle": cycle.index,
        "widths": {n: cycle.widths[n] for n in LAYERS},
        "widths_after": {n: cycle.widths_after[n] for n in LAYERS},
        "params": cycle.params,
        "flops": cycle.flops,
        "rmse": cycle.val_metric,
        "train_rmse": cycle.metric,
        "removed": cycle.removed_count,
        "mean_variance": {n: float(s.variance.mean()) for n, s in cycle.stats.items()},
        "seconds": cycle.train_seconds + cycle.stats_seconds + cycle.prune_seconds,
    }


def within_tolerance(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The last cycle before the first whose RMSE exceeds cycle 0's by more than ``TOLERANCE``."""
    chosen = rows[0]
    for row in rows[1:]:
        if row["rmse"] - rows[0]["rmse"] > TOLERANCE:
            break
        chosen = row
    return chosen


def run_recipe(recipe: str, seed: int, data: Dataset, quick: bool) -> dict[str, Any]:
    """Run one recipe with one seed; returns its per-cycle rows and final numbers."""
    spec_data = merged(BASE, RECIPES[recipe])
    spec_data["seed"] = seed
    spec_data["name"] = f"mnist-autoencoder-{recipe}-seed{seed}"
    if quick:
        spec_data["pruning"]["max_cycles"] = min(3, spec_data["pruning"]["max_cycles"])
        spec_data["training"]["first_epochs"] = 2
        spec_data["training"]["epochs"] = 1
    spec = ExperimentSpec.model_validate(spec_data)
    started = time.perf_counter()
    result: ExperimentResult = run_cycles(spec, data, CyclePrinter(f"{recipe} seed {seed}", cycle_line))
    seconds = time.perf_counter() - started
    rows = [cycle_row(c) for c in result.cycles]
    final = rows[result.final_position]
    tol = within_tolerance(rows)
    return {
        "recipe": recipe,
        "seed": seed,
        "spec": spec.model_dump(mode="json"),
        "cycles": rows,
        "stop_reason": result.stop_reason,
        "final_cycle": final["cycle"],
        "final_channels": channels(final["widths"]),
        "final_params": final["params"],
        "rmse_cycle0": rows[0]["rmse"],
        "rmse_final": final["rmse"],
        "tolerance_cycle": tol["cycle"],
        "tolerance_channels": channels(tol["widths"]),
        "tolerance_params": tol["params"],
        "tolerance_rmse": tol["rmse"],
        "wall_seconds": seconds,
    }


def markdown(runs: list[dict[str, Any]], figure_link: str | None) -> str:
    reference = [r for r in runs if r["recipe"] == "unpruned"]
    summary = [
        [
            f"`{r['recipe']}`",
            r["seed"],
            r["final_channels"],
            f"{r['final_params']:,}",
            f"{r['rmse_cycle0']:.4f}",
            f"{r['rmse_final']:.4f}",
            r["final_cycle"],
            r["stop_reason"],
            f"{r['tolerance_channels']} ({r['tolerance_rmse']:.4f}, cycle {r['tolerance_cycle']})",
            f"{r['wall_seconds']:.0f}",
        ]
        for r in runs
    ]
    parts = [
        "Preset `mnist-autoencoder` (1-32-64-32-1, 3×3 stride-2 convolutions with BatchNorm and ReLU, tanh "
        "output; 38,085 parameters) reconstructing the fixed 8,000/2,000 split of the MNIST t10k files "
        "(pixels in [0, 1]). Adam 1e-3, batch 128, RMS loss, L2 0.01 on the kernels, no distortion; "
        "cycle 0 trains 10 epochs, every later cycle 3 epochs from the surviving weights; channel "
        "statistics (after BatchNorm and ReLU) from 2,000 training images; at most half a layer's "
        "channels go per cycle. RMSE is on the 2,000 held-out images. Recipes:",
        "",
        *[
            f"- `{name}`: {text}"
            for name, text in DESCRIPTIONS.items()
            if any(r["recipe"] == name for r in runs)
        ],
        "",
        f'Final models. "Within +{TOLERANCE}" is the smallest model before the first cycle whose '
        f"held-out RMSE exceeds cycle 0's by more than {TOLERANCE}, i.e. where `tolerance: {TOLERANCE}` "
        "stops the same run:",
        "",
        table(
            [
                "recipe",
                "seed",
                "final channels",
                "params",
                "RMSE cycle 0",
                "RMSE final",
                "cycles",
                "stop",
                f"within +{TOLERANCE} (RMSE)",
                "wall s",
            ],
            summary,
        ),
        "",
    ]
    if reference:
        parts += [
            f"The unpruned reference trained {UNPRUNED_EPOCHS} epochs in one go reaches held-out RMSE "
            + ", ".join(f"{r['rmse_final']:.4f} (seed {r['seed']})" for r in reference)
            + ": cycle 0 (10 epochs) is not converged, so later cycles can beat it while pruning.",
            "",
        ]
    for r in runs:
        if r["seed"] != runs[0]["seed"] or r["recipe"] == "unpruned":
            continue
        rows = [
            [
                c["cycle"],
                channels(c["widths"]),
                f"{c['params']:,}",
                f"{c['rmse']:.4f}",
                c["removed"],
                f"{c['seconds']:.0f}",
            ]
            for c in r["cycles"]
        ]
        parts += [
            f"Per cycle, `{r['recipe']}` seed {r['seed']}:",
            "",
            table(["cycle", "channels trained", "params", "held-out RMSE", "removed", "s"], rows),
            "",
        ]
    if figure_link:
        parts += [f"Figure: [channels and RMSE per cycle]({figure_link}).", ""]
    parts += [vs_paper(runs), ""]
    return "\n".join(parts)


def vs_paper(runs: list[dict[str, Any]]) -> str:
    lines = ["**vs the paper.** The thesis' best: 1-2-4-3-1 channels in 10 ± 4 cycles with loss ≈ 0."]
    for recipe in RECIPES:
        chosen = [r for r in runs if r["recipe"] == recipe]
        if not chosen or recipe == "unpruned":
            continue
        finals = ", ".join(f"{r['final_channels']} (RMSE {r['rmse_final']:.3f})" for r in chosen)
        tols = ", ".join(f"{r['tolerance_channels']}" for r in chosen)
        lines.append(f"`{recipe}` ends at {finals}; within +{TOLERANCE} of cycle 0: {tols}.")
    lines.append(
        "The thesis' rule as stated (band mean ± 2·var(v)) shrinks the net slowly here: var(v) of a "
        "layer's channel variances is tiny next to their spread, so the band holds only a few channels a "
        "cycle, and it removes the typical channels rather than the useless ones "
        "(1-13-21-3-1 and 1-11-22-2-1 after 15 cycles, RMSE 0.07). "
        "Widening the band (k = 20) makes the per-cycle cap of half a "
        "layer bind: 1-2-4-2-1 after four pruning cycles and 1-1-2-1-1 after five or six, the thesis' "
        "size class in fewer cycles than its 10 ± 4, but not at loss ≈ 0: every halving below 8-16-8 "
        "costs held-out RMSE (about 0.035 → 0.06 → 0.09 → 0.17), so ours falls short of "
        '"1-2-4-3-1 at loss ≈ 0"; the tolerance stop keeps 1-4-8-4-1 (733 parameters, 52× fewer). '
        "Output variance ≤ 0.01 prunes gradually to about 1-12-40-22-1 with RMSE 0.018-0.021, as "
        "good as the converged unpruned model (0.019) with about 2.9× fewer parameters. Activation "
        "count 0 prunes nothing: with BatchNorm before the ReLU every channel is re-centred and stays "
        "active on part of the data. Likely reasons for the shortfall: the thesis' loss value is not "
        "defined comparably (it may be a training loss or another scale); it trains on 60,000 images "
        "rather than 8,000 and for longer per cycle; and a 2-4-3 bottleneck (7×7×4 = 196 numbers) "
        "cannot reproduce 784 pixels exactly, so a near-zero RMSE at that size is not expected from "
        "this model. What would close the gap: more training per cycle (or a final fine-tune), the "
        "full 60,000 images, and a per-channel penalty on the BatchNorm scale (not an engine option "
        "today) so that unneeded channels actually go flat."
    )
    return " ".join(lines)


def figure(runs: list[dict[str, Any]]) -> Any:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("channels", "held-out RMSE"))
    for r in runs:
        if r["seed"] != runs[0]["seed"] or r["recipe"] == "unpruned":
            continue
        x = [c["cycle"] for c in r["cycles"]]
        for layer in LAYERS:
            y = [c["widths"][layer] for c in r["cycles"]]
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=f"{r['recipe']} {layer}"), 1, 1)
        rmse = [c["rmse"] for c in r["cycles"]]
        fig.add_trace(go.Scatter(x=x, y=rmse, mode="lines+markers", name=f"{r['recipe']} RMSE"), 1, 2)
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="cycle")
    fig.update_layout(title="MNIST autoencoder pruning (seed 0)", height=480)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="MNIST directory")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per recipe (0, 1, …)")
    parser.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--quick", action="store_true", help="one seed, few short cycles; records nothing")
    args = parser.parse_args()

    started = time.perf_counter()
    seeds = [0] if args.quick else list(range(args.seeds))
    first = ExperimentSpec.model_validate(BASE)
    data = load_dataset(first.dataset, seed=first.seed, data_dirs=[args.data_dir], local_paths=True)
    print(f"data: {data.description}", flush=True)
    runs: list[dict[str, Any]] = []
    for recipe in args.recipes:
        for seed in seeds[:1] if recipe in SINGLE_SEED else seeds:
            print(f"{recipe} seed {seed}: {DESCRIPTIONS[recipe]}", flush=True)
            run = run_recipe(recipe, seed, data, args.quick)
            runs.append(run)
            print(
                f"  -> {run['final_channels']} after cycle {run['final_cycle']} ({run['stop_reason']}), "
                f"RMSE {run['rmse_cycle0']:.4f} -> {run['rmse_final']:.4f}; within +{TOLERANCE}: "
                f"{run['tolerance_channels']}; {run['wall_seconds']:.0f} s",
                flush=True,
            )
    wall = time.perf_counter() - started
    if args.quick:
        print(markdown(runs, None))
        return
    link = write_figure(NAME, "channels", figure(runs))
    data_out = {"dataset": data.description, "tolerance": TOLERANCE, "runs": runs}
    path = record(NAME, data_out, markdown(runs, link), wall)
    print(f"recorded {path} in {wall:.0f} s")


if __name__ == "__main__":
    main()
