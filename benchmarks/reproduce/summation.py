"""Çallı's summation experiment (2 → Dense 1000 ReLU → Dense 1, y = x1 + x2) through prunelab's engine.

Runs every recipe of the grid for several seeds with ``worker.local_run.run_local`` and records the
final hidden width, the held-out RMSE, the cycles and the wall time of every run:

* the thesis' recipes, each with the activation-count criterion (threshold 0) and the variance
  criterion (threshold 1e-6): vanilla, weight distortion, L1 0.01 and L2 0.01 — all built on
  ``examples/sum-vanilla.yaml``;
* the previous default, ``examples/sum-distortion.yaml``;
* the default, ``examples/sum-best.yaml``, with either criterion, and three ablations of it (with
  distortion, without the merge tolerance, with a constant learning rate).

The optimum is one hidden unit; the target is a default recipe that reaches it with held-out RMSE
≤ 1e-3 in at least 4 of 5 seeds.

Usage (from the repository root)::

    python benchmarks/reproduce/summation.py                 # 5 seeds, 200k samples, records results
    python benchmarks/reproduce/summation.py --quick         # smoke run: 1 seed, 20k samples, 3 cycles,
                                                             # prints the section, records nothing
    python benchmarks/reproduce/summation.py --recipes best,vanilla-count --seeds 3

Every process trains single-threaded (``TF_NUM_INTRAOP_THREADS=1``) so the machine stays shared
fairly; ``--jobs 2`` runs two experiments at a time.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from report import record, table, write_figure  # noqa: E402  (this script's directory is on sys.path)

EXAMPLES = ROOT / "examples"
COUNT = {"type": "activation_count", "threshold": 0}
VARIANCE = {"type": "variance", "threshold": 1e-6}
TARGET_RMSE = 1e-3
DEFAULT = "best"


@dataclass(frozen=True)
class Recipe:
    """One row of the grid: a spec file plus overrides."""

    key: str
    label: str
    criterion: str
    base: str
    overrides: dict[str, Any] = field(default_factory=dict)
    group: str = "thesis"


def _paper(key: str, label: str, pruning: dict[str, Any], training: dict[str, Any]) -> list[Recipe]:
    return [
        Recipe(
            f"{key}-{short}",
            label,
            name,
            "sum-vanilla.yaml",
            {"training": training, "pruning": {**pruning, "criterion": criterion, "max_cycles": 15}},
        )
        for short, name, criterion in (
            ("count", "activation count ≤ 0", COUNT),
            ("variance", "variance ≤ 1e-6", VARIANCE),
        )
    ]


RECIPES: tuple[Recipe, ...] = (
    *_paper("vanilla", "vanilla", {}, {}),
    *_paper("distortion", "distortion 0.1", {"distortion": 0.1}, {}),
    *_paper("l1", "L1 0.01", {}, {"l1": 0.01}),
    *_paper("l2", "L2 0.01", {}, {"l2": 0.01}),
    Recipe(
        "previous",
        "previous default (sum-distortion.yaml)",
        "activation count ≤ 0",
        "sum-distortion.yaml",
        group="prunelab",
    ),
    Recipe(DEFAULT, "**default (sum-best.yaml)**", "activation count ≤ 0", "sum-best.yaml", group="prunelab"),
    Recipe(
        "best-variance",
        "default, variance criterion",
        "variance ≤ 1e-6",
        "sum-best.yaml",
        {"pruning": {"criterion": VARIANCE}},
        group="prunelab",
    ),
    Recipe(
        "best+distortion",
        "default + distortion 0.1",
        "activation count ≤ 0",
        "sum-best.yaml",
        {"pruning": {"distortion": 0.1}},
        group="ablation",
    ),
    Recipe(
        "best-tolerance",
        "default without merge_tolerance",
        "activation count ≤ 0",
        "sum-best.yaml",
        {"pruning": {"merge_tolerance": 0.0}},
        group="ablation",
    ),
    Recipe(
        "best-cosine",
        "default with a constant learning rate",
        "activation count ≤ 0",
        "sum-best.yaml",
        {"training": {"lr_schedule": "constant"}},
        group="ablation",
    ),
)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = (
            _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        )
    return out


def build_spec(recipe: Recipe, seed: int, samples: int, max_cycles: int | None) -> Any:
    """The recipe's ExperimentSpec for one seed (spec file + overrides + seed and sample count)."""
    import yaml

    from prunespec.spec import ExperimentSpec

    data = yaml.safe_load((EXAMPLES / recipe.base).read_text(encoding="utf-8"))
    data = _merge(data, recipe.overrides)
    data = _merge(
        data, {"name": f"summation-{recipe.key}", "seed": seed, "dataset": {"train_samples": samples}}
    )
    if max_cycles is not None:
        data["pruning"]["max_cycles"] = min(int(data["pruning"]["max_cycles"]), max_cycles)
    return ExperimentSpec.model_validate(data)


def run_one(job: tuple[Recipe, int, int, int | None, str | None]) -> dict[str, Any]:
    """Run one recipe for one seed in this process; returns the numbers of the run."""
    recipe, seed, samples, max_cycles, keep = job
    import tensorflow as tf

    from worker.local_run import run_local

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    spec = build_spec(recipe, seed, samples, max_cycles)
    with tempfile.TemporaryDirectory(prefix="prunelab-summation-") as scratch:
        out_dir = Path(keep) / f"{recipe.key}-seed{seed}" if keep else Path(scratch) / "run"
        started = time.perf_counter()
        run = run_local(spec, out_dir=out_dir, quiet=True)
        wall = time.perf_counter() - started
    result = run.result
    final = result.cycles[result.final_position]
    return {
        "recipe": recipe.key,
        "seed": seed,
        "final_width": int(final.widths["hidden"]),
        "rmse": float(final.val_metric),
        "cycles": len(result.cycles),
        "stop_reason": result.stop_reason,
        "wall_seconds": round(wall, 2),
        "widths": [int(c.widths["hidden"]) for c in result.cycles],
        "val_rmse": [float(c.val_metric) for c in result.cycles],
    }


# --------------------------------------------------------------------------------------------- summary


def _spread(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    median = statistics.median(values)
    return f"{median:{fmt}} [{min(values):{fmt}}–{max(values):{fmt}}]"


def summarise(recipe: Recipe, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-recipe summary: seeds at 1 unit, seeds meeting the target, medians and ranges."""
    widths = [r["final_width"] for r in runs]
    rmses = [r["rmse"] for r in runs]
    return {
        "recipe": recipe.key,
        "label": recipe.label,
        "criterion": recipe.criterion,
        "group": recipe.group,
        "seeds": len(runs),
        "one_unit": sum(w == 1 for w in widths),
        "target": sum(r["final_width"] == 1 and r["rmse"] <= TARGET_RMSE for r in runs),
        "width_median": statistics.median(widths) if widths else None,
        "width_min": min(widths, default=None),
        "width_max": max(widths, default=None),
        "rmse_median": statistics.median(rmses) if rmses else None,
        "rmse_min": min(rmses, default=None),
        "rmse_max": max(rmses, default=None),
        "cycles_median": statistics.median([r["cycles"] for r in runs]) if runs else None,
        "wall_median": statistics.median([r["wall_seconds"] for r in runs]) if runs else None,
    }


def recipes_table(recipes: list[Recipe], runs: dict[str, list[dict[str, Any]]]) -> str:
    rows = []
    for recipe in recipes:
        done = runs.get(recipe.key, [])
        summary = summarise(recipe, done)
        rows.append(
            [
                recipe.label,
                recipe.criterion,
                f"{summary['one_unit']}/{len(done)}",
                f"{summary['target']}/{len(done)}",
                _spread([float(r["final_width"]) for r in done], ".0f"),
                _spread([r["rmse"] for r in done], ".2g"),
                _spread([float(r["cycles"]) for r in done], ".0f"),
                _spread([r["wall_seconds"] for r in done], ".0f"),
            ]
        )
    header = [
        "recipe",
        "criterion",
        "seeds at 1 unit",
        "1 unit, RMSE ≤ 1e-3",
        "final width, median [min–max]",
        "held-out RMSE",
        "cycles",
        "wall s",
    ]
    return table(header, rows)


def seeds_table(runs: list[dict[str, Any]]) -> str:
    rows = [
        [
            r["seed"],
            r["final_width"],
            f"{r['rmse']:.2g}",
            r["cycles"],
            f"{r['wall_seconds']:.0f}",
            r["stop_reason"],
            " → ".join(str(w) for w in r["widths"]),
        ]
        for r in sorted(runs, key=lambda r: r["seed"])
    ]
    return table(
        ["seed", "final width", "held-out RMSE", "cycles", "wall s", "stop", "width per cycle"], rows
    )


def figure(recipes: list[Recipe], runs: dict[str, list[dict[str, Any]]]) -> Any:
    """Hidden width against cycle, one line per run, coloured by recipe."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    fig = go.Figure()
    palette = qualitative.Dark24
    for index, recipe in enumerate(recipes):
        for n, run in enumerate(sorted(runs.get(recipe.key, []), key=lambda r: r["seed"])):
            fig.add_trace(
                go.Scatter(
                    x=list(range(len(run["widths"]))),
                    y=run["widths"],
                    mode="lines+markers",
                    name=f"{recipe.label.strip('*')} / {recipe.criterion}",
                    legendgroup=recipe.key,
                    showlegend=n == 0,
                    line={"color": palette[index % len(palette)]},
                    hovertemplate=(
                        f"{recipe.key} seed {run['seed']}<br>cycle %{{x}}: %{{y}} units<extra></extra>"
                    ),
                )
            )
    fig.update_layout(
        title="Summation net: hidden width per cycle (one line per seed)",
        xaxis_title="cycle",
        yaxis_title="hidden units trained in the cycle",
        yaxis_type="log",
        template="plotly_white",
    )
    return fig


def markdown(
    recipes: list[Recipe], runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, link: str | None
) -> str:
    by_key = {recipe.key: summarise(recipe, runs.get(recipe.key, [])) for recipe in recipes}
    best = by_key.get(DEFAULT)
    parts = [
        f"Setup: 2 → Dense 1000 ReLU → Dense 1, y = x1 + x2, x ~ uniform[0, 1]², {args.samples:,} training "
        "samples and 10,000 held-out samples per seed, momentum 0.9, lr 0.01, batch 1000, RMSE loss, "
        "3 epochs per cycle, statistics on 10,000 training inputs, stop when a cycle removes nothing "
        f"(at most 15 cycles). Seeds {', '.join(str(s) for s in range(args.seeds))}; one process per run, "
        f'single-threaded, {args.jobs} at a time. "Held-out RMSE" is the final model\'s RMSE on the 10,000 '
        'held-out samples; "final width" is the hidden width of the final model. The thesis recipes are '
        "`examples/sum-vanilla.yaml` with the change named (no exact reductions, as in the thesis); the "
        "default is `examples/sum-best.yaml`; the previous default `examples/sum-distortion.yaml` runs "
        "with today's engine (10% merge margin, no distortion of a layer at min_units).",
        "",
        recipes_table(recipes, runs),
        "",
    ]
    if DEFAULT in runs:
        parts += ["Default recipe (`examples/sum-best.yaml`), per seed:", "", seeds_table(runs[DEFAULT]), ""]
    if link:
        parts += [f"Figure: [hidden width per cycle, every recipe and seed]({link}).", ""]
    parts += [
        "**Why the previous default stopped at 2–3 units, and the fix.** Inputs lie in [0, 1]², so a "
        "useful unit's kink tends to sit near the corner x1 + x2 ≈ 0: such a unit is zero on a handful of "
        "the measured inputs and active on the rest. It is neither dead (activation count) nor constant "
        "(folding), and merging took only units active on *every* input, so two or three of these "
        "nearly-linear units survived every cycle. `pruning.merge_tolerance` (new, default 0) also merges "
        "units inactive on at most that fraction of the measured inputs (1% here), re-biasing the merged "
        "unit so it is active everywhere; a lone nearly-linear unit is re-biased the same way, which also "
        "removes the error in the data corner. The merged unit now keeps a margin of 10% of its "
        "pre-activation range (was 1%): its bias is a flat direction of the loss, and with 1% retraining "
        "drifted it back into the corner. The remaining error was optimisation noise: with the RMSE loss "
        "the gradient does not shrink near the optimum, so at a constant learning rate the error bounces "
        "around 1e-2; `training.lr_schedule: cosine` (new, default constant) decays the rate to 0 over each "
        "cycle. Distortion is no longer needed, and a layer already at `min_units` is no longer distorted "
        "(noise there can only hurt). The ablation rows show what each part contributes.",
        "",
    ]
    if best is not None and best["seeds"]:
        seeds = best["seeds"]
        verdict = "meets" if best["target"] >= min(4, seeds) else "falls short of"
        thesis_count = by_key.get("distortion-count")
        thesis_var = by_key.get("distortion-variance")
        vanilla = by_key.get("vanilla-count")
        sentences = [
            f"**vs the paper.** The default recipe {verdict} the target: {best['one_unit']} of {seeds} seeds "
            f"reach the optimum of one hidden unit and {best['target']} of {seeds} also have held-out RMSE ≤ "
            f"1e-3 (median {best['rmse_median']:.2g}, worst {best['rmse_max']:.2g}), in a median of "
            f"{best['cycles_median']:.0f} cycles and {best['wall_median']:.0f} s per run."
        ]
        if vanilla is not None and vanilla["seeds"]:
            sentences.append(
                "Vanilla pruning at threshold 0 behaves as the thesis reports: it removes the units that "
                "are dead after the first cycle and then stalls "
                f"(median final width {vanilla['width_median']:.0f})."
            )
        if (
            thesis_count is not None
            and thesis_count["seeds"]
            and thesis_var is not None
            and thesis_var["seeds"]
        ):
            sentences.append(
                "The thesis reached one unit only with distortion; its distortion recipes on their own reach "
                f"one unit here in {thesis_count['one_unit']}/{thesis_count['seeds']} (activation count) and "
                f"{thesis_var['one_unit']}/{thesis_var['seeds']} (variance) seeds within 15 cycles "
                f"(median widths {thesis_count['width_median']:.0f} and {thesis_var['width_median']:.0f}), "
                "so the thesis' result is not reproduced with its own recipe at this budget (it trained on "
                "1,000,000 samples; its distortion scale is not stated in a form we can match exactly)."
            )
        variance_default = by_key.get("best-variance")
        if best["target"] >= min(4, seeds) and best["one_unit"] > 0:
            either = (
                f", and with the variance criterion too ({variance_default['one_unit']}/"
                f"{variance_default['seeds']} seeds at one unit)"
                if variance_default is not None and variance_default["seeds"]
                else ""
            )
            sentences.append(
                "So prunelab beats the thesis on this problem: the optimum without distortion, from exact "
                "reductions (constant folding, linear-unit merging) plus a group-lasso penalty, a merge "
                f"tolerance and a per-cycle cosine learning rate{either}."
            )
        parts += [" ".join(sentences), ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per recipe (default 5)")
    parser.add_argument("--samples", type=int, default=200_000, help="training samples (default 200000)")
    parser.add_argument("--recipes", default="", help="comma-separated recipe keys (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time, one process each (default 1)")
    parser.add_argument("--keep-runs", default=None, help="keep every run's directory under this path")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 seed, 20000 samples, at most 3 cycles; prints the section, records nothing",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.samples = 1, 20_000
    known = {recipe.key for recipe in RECIPES}
    chosen = [key for key in args.recipes.split(",") if key] or [recipe.key for recipe in RECIPES]
    unknown = sorted(set(chosen) - known)
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {sorted(known)}")
    args.chosen = chosen
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    recipes = [recipe for recipe in RECIPES if recipe.key in args.chosen]
    max_cycles = 3 if args.quick else None
    jobs = [
        (recipe, seed, args.samples, max_cycles, args.keep_runs)
        for recipe in recipes
        for seed in range(args.seeds)
    ]
    runs: dict[str, list[dict[str, Any]]] = {}
    print(
        f"summation: {len(recipes)} recipes × {args.seeds} seeds, {args.samples:,} samples, "
        f"{args.jobs} at a time"
    )

    def done(run: dict[str, Any], position: int) -> None:
        runs.setdefault(run["recipe"], []).append(run)
        print(
            f"[{position}/{len(jobs)}] {run['recipe']:<20} seed {run['seed']}: "
            f"width {run['final_width']:>4}, RMSE {run['rmse']:.3g}, {run['cycles']} cycles, "
            f"{run['wall_seconds']:.0f} s ({run['stop_reason']})",
            flush=True,
        )

    if args.jobs <= 1:
        for position, job in enumerate(jobs, 1):
            done(run_one(job), position)
    else:
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=get_context("spawn")) as pool:
            for position, run in enumerate(pool.map(run_one, jobs), 1):
                done(run, position)

    wall = time.perf_counter() - started
    summaries = [summarise(recipe, runs.get(recipe.key, [])) for recipe in recipes]
    data = {
        "setup": {
            "seeds": list(range(args.seeds)),
            "samples": args.samples,
            "test_samples": 10_000,
            "jobs": args.jobs,
            "target_rmse": TARGET_RMSE,
            "default": "examples/sum-best.yaml",
        },
        "recipes": summaries,
        "runs": [
            run for recipe in recipes for run in sorted(runs.get(recipe.key, []), key=lambda r: r["seed"])
        ],
    }
    link = None
    if not args.quick:
        try:
            link = write_figure("summation", "widths", figure(recipes, runs))
        except ImportError:
            link = None
    section = markdown(recipes, runs, args, link)
    print()
    print(section)
    if args.quick:
        print(f"(quick run: nothing recorded; {wall:.0f} s)")
        return 0
    path = record("summation", data, section, wall)
    print(f"recorded {path} in {wall:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
