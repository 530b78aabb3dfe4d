"""Performance as ratios measured in one run: engine overheads, and TFLite latency vs FLOPs per cycle.

Usage:
    python benchmarks/reproduce/performance.py [--data-dir ../shared/datasets/mnist-t10k] [--quick]
        [--sum-samples 500000] [--sum-epochs 2] [--lenet-epochs 2] [--repeats 5] [--runs 500]

Two parts, both reusing the benchmarks beside this directory:

1. ``engine_throughput.measure_overheads``: cycle 0's training (``_Run.train``) against plain
   ``model.fit``, with and without per-epoch validation (and with ``validation_every`` = the epochs
   against the bare fit), and the statistics pass against plain ``model.predict`` (on one model, on
   a fresh model each time so both trace, and with XLA's reductions instead of the C kernel); paired
   repeats, alternating which goes first, ratio = median of per-repeat ratios. Then LeNet-5's time
   to its first epoch (load the data cold and from the process cache, fit it to the model, build,
   compile, first training step), and the issue-14 targets with a verdict each.
   Run on the summation net (generated data; smaller than that benchmark's default of 1,000,000 samples
   and 3 epochs) and on LeNet-5 with MNIST 8,000 images (the examples/lenet5-apoz.yaml recipe, cycle 0
   cut to a few epochs).
2. ``tflite_latency.trim_and_benchmark``: LeNet-5 trimmed by APoZ (examples/lenet5-apoz.yaml), every
   cycle converted to float32, float16, int8_dynamic and int8_full TFLite, all of them timed at batch 1
   in one interleaved LiteRT loop; speed-up over cycle 0's float32 model against the FLOPs reduction.

TensorFlow runs with one intra-op and one inter-op thread (on the device it finds, printed), LiteRT
with one thread. Ends with
``record("performance", ...)``: benchmarks/results/performance.json and docs/results.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the two benchmarks reused

import keras  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
import tensorflow as tf  # noqa: E402
from engine_throughput import measure_overheads, measure_statistics, throughput_spec  # noqa: E402
from report import ROOT, record, table, write_figure  # noqa: E402
from tflite_latency import trim_and_benchmark  # noqa: E402

from prunespec.spec import ExperimentSpec, load_spec
from worker.engine import fold_kernel  # noqa: E402
from worker.engine.bits import FORMATS  # noqa: E402
from worker.engine.build import build_model  # noqa: E402
from worker.engine.cycle import _Run  # noqa: E402
from worker.engine.data import load_dataset  # noqa: E402
from worker.engine.data.cache import cached_dataset, clear_cache  # noqa: E402
from worker.engine.results import NullReporter  # noqa: E402
from worker.engine.training import compile_model  # noqa: E402
from worker.runtime import device  # noqa: E402

NAME = "performance"
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "datasets" / "mnist-t10k"
LENET_SPEC = ROOT / "examples" / "lenet5-apoz.yaml"
MOBILENET_SPEC = ROOT / "examples" / "mobilenet-slimming.yaml"
#: The models the report names, by their key in ``overheads`` (MobileNet: statistics pass only).
MODELS = {"summation": "summation", "lenet5": "LeNet-5", "mobilenet": "mobilenet-v2-mini"}
COMPARISONS = {
    "training_vs_fit": ("cycle training", "model.fit"),
    "training_vs_fit_with_validation": ("cycle training", "model.fit + validation"),
    "training_last_validation_vs_fit": ("cycle training, validation_every = epochs", "model.fit"),
    "stats_vs_predict": ("statistics pass", "model.predict"),
    "stats_fresh_model_vs_predict": ("statistics pass, fresh model (traces)", "model.predict, fresh model"),
    "stats_xla_vs_predict": ("statistics pass, XLA's reductions (no C kernel)", "model.predict"),
}
#: Issue 14's targets: comparison key -> the highest ratio that meets it.
TARGETS = {
    "stats_vs_predict": 1.2,
    "training_vs_fit_with_validation": 1.05,
    "training_vs_fit": 1.10,
}


def with_changes(spec: ExperimentSpec, **sections: dict[str, Any]) -> ExperimentSpec:
    """A copy of a spec with some fields of its sections replaced (validated again)."""
    data = spec.model_dump(mode="json")
    for section, changes in sections.items():
        data[section] = {**data[section], **changes}
    return ExperimentSpec.model_validate(data)


def overhead_rows(
    label: str, examples: int, stats_examples: int, epochs: int, result: dict[str, dict[str, Any]]
) -> list[list[str]]:
    """Table rows of one model's overheads."""
    rows = []
    for key, (engine, baseline) in COMPARISONS.items():
        if key not in result:
            continue
        entry = result[key]
        ratios = entry["ratios"]
        processed = stats_examples if key.startswith("stats") else examples * epochs
        rows.append(
            [
                label,
                f"{engine} vs {baseline}",
                f"{entry['baseline_s']:.2f}",
                f"{entry['engine_s']:.2f}",
                f"**{entry['ratio']:.2f}×**",
                f"{min(ratios):.2f}–{max(ratios):.2f}",
                f"{processed / entry['engine_s']:,.0f}",
            ]
        )
    return rows


class _FirstStep(keras.callbacks.Callback):
    """Notes when the first training step has finished, then stops the fit."""

    def __init__(self) -> None:
        super().__init__()
        self.at = 0.0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if batch == 0:
            self.at = time.perf_counter()
        self.model.stop_training = True


def time_to_first_epoch(spec: ExperimentSpec, data_dirs: list[Path], repeats: int) -> dict[str, Any]:
    """Seconds from a claimed experiment to its first finished training step, by stage (medians).

    Stages: load the data (cold: the process cache emptied; warm: from the cache), fit it to the model
    (``_Run``), build, compile, and ``fit`` up to the end of its first step (data adapter and the
    train function's trace). The claim itself is one database UPDATE, not timed here.
    """
    stages: dict[str, list[float]] = {
        key: [] for key in ("load_cold", "load_cached", "prepare", "build", "compile", "first_step")
    }
    for _ in range(repeats):
        clear_cache()
        started = time.perf_counter()
        cached_dataset(spec.dataset, seed=spec.seed, data_dirs=data_dirs, local_paths=True)
        cold = time.perf_counter()
        data = cached_dataset(spec.dataset, seed=spec.seed, data_dirs=data_dirs, local_paths=True)
        warm = time.perf_counter()
        run = _Run(spec, data, NullReporter())
        prepared = time.perf_counter()
        model = build_model(spec.model, spec.training, run.prunable)
        built = time.perf_counter()
        compile_model(model, spec.training, run.goal)
        compiled = time.perf_counter()
        first = _FirstStep()
        batch = spec.training.batch_size
        model.fit(run.x_train, run.y_train, batch_size=batch, callbacks=[first], verbose=0)
        marks = (started, cold, warm, prepared, built, compiled)
        for key, begin, end in zip(stages, marks, (*marks[1:], first.at), strict=True):
            stages[key].append(end - begin)
    clear_cache()
    medians = {key: statistics.median(values) for key, values in stages.items()}
    medians["total_cold"] = sum(v for k, v in medians.items() if k != "load_cached")
    medians["total_cached"] = sum(v for k, v in medians.items() if k not in ("load_cold", "total_cold"))
    return medians


def targets_table(overheads: dict[str, Any]) -> tuple[str, list[str]]:
    """One row per issue-14 target and model: the limit, the ratio and its range, met or not."""
    rows, missed = [], []
    for key, limit in TARGETS.items():
        engine, baseline = COMPARISONS[key]
        for model_key, label in MODELS.items():
            if key not in overheads[model_key]:
                continue
            entry = overheads[model_key][key]
            met = entry["ratio"] <= limit
            if not met:
                missed.append(f"{engine} vs {baseline} on {label}")
            rows.append(
                [
                    f"{engine} vs {baseline}",
                    label,
                    f"≤ {limit:.2f}×",
                    f"{entry['ratio']:.2f}×",
                    f"{min(entry['ratios']):.2f}–{max(entry['ratios']):.2f}",
                    "**met**" if met else "**not met**",
                ]
            )
    header = ["target", "model", "limit", "ratio", "per-repeat range", "verdict"]
    return table(header, rows), missed


def latency_figure(rows: list[dict[str, Any]], time_formats: list[str]) -> go.Figure:
    """Measured speed-up over cycle 0's float32 model against FLOPs reduction, per cycle and format."""
    fig = go.Figure()
    top = max(row["flops_reduction"] for row in rows)
    fig.add_trace(
        go.Scatter(
            x=[1, top], y=[1, top], mode="lines", name="speed-up = FLOPs reduction", line={"dash": "dash"}
        )
    )
    for fmt in time_formats:
        speedups = [
            row["speedup"] if fmt == "float32" else row["format_latency"][fmt]["speedup"] for row in rows
        ]
        fig.add_trace(
            go.Scatter(
                x=[row["flops_reduction"] for row in rows],
                y=speedups,
                mode="lines+markers",
                name=f"{fmt} (vs cycle 0 float32)",
                text=[f"cycle {row['cycle']}, ip1 {row['widths'].get('ip1')}" for row in rows],
                hovertemplate=(
                    "%{text}<br>FLOPs ÷ %{x:.3f}<br>speed-up %{y:.2f}×<extra>%{fullData.name}</extra>"
                ),
            )
        )
    fig.update_layout(
        title="LeNet-5 trimmed by APoZ: LiteRT batch-1 speed-up vs FLOPs reduction (one interleaved run)",
        xaxis={"title": "FLOPs reduction over cycle 0 (×)"},
        yaxis={"title": "measured speed-up over cycle 0 float32 (×, median of paired rounds)"},
        template="plotly_white",
    )
    return fig


def latency_table(report: dict[str, Any], time_formats: list[str]) -> str:
    """One row per cycle: widths, params, FLOPs, speed-ups per format, accuracies."""
    header = ["cycle", "ip1", "params", "MFLOPs", "FLOPs ÷", "float32 µs", "float32 speed-up"]
    header += [f"{fmt} µs (speed-up)" for fmt in time_formats if fmt != "float32"]
    header += ["keras acc %", "float32 acc %", "int8_full acc %"]
    rows = []
    for row in report["cycles"]:
        cells = [
            f"{row['cycle']}" + ("" if row["accepted"] else " (rejected)"),
            row["widths"].get("ip1"),
            f"{row['params']:,}",
            f"{row['flops'] / 1e6:.3f}",
            f"{row['flops_reduction']:.3f}×",
            f"{row['latency']['median_us']:.1f}",
            f"**{row['speedup']:.2f}×**",
        ]
        for fmt in time_formats:
            if fmt != "float32":
                timed = row["format_latency"][fmt]
                cells.append(f"{timed['median_us']:.1f} ({timed['speedup']:.2f}×)")
        formats = row["formats"]
        cells += [
            f"{100 * row['keras_metric']:.2f}",
            f"{100 * formats['float32']['metric']:.2f}" if "float32" in formats else "—",
            f"{100 * formats['int8_full']['metric']:.2f}" if "int8_full" in formats else "—",
        ]
        rows.append(cells)
    return table(header, rows)


def recipe_text(spec: ExperimentSpec) -> str:
    """The trimming recipe in a few words, e.g. "APoZ k = 0 on ip1, tolerance 1 point"."""
    pruning = spec.pruning
    criterion = pruning.criterion.model_dump()
    knobs = ", ".join(f"{key} = {value:g}" for key, value in criterion.items() if key in ("k", "threshold"))
    layers = ", ".join(pruning.layers) if pruning.layers else "every prunable layer"
    tolerance = (
        "no tolerance" if pruning.tolerance is None else f"tolerance {100 * pruning.tolerance:g} point(s)"
    )
    return f"{criterion['type']} {knobs} on {layers}, {tolerance}"


def vs_paper(
    overheads: dict[str, Any], report: dict[str, Any], time_formats: list[str], settings: dict[str, Any]
) -> str:
    """The "vs the papers" paragraph, its numbers and verdicts computed."""
    rows = report["cycles"]
    accepted = [row for row in rows if row["accepted"]]
    final = accepted[-1] if accepted else rows[0]
    lenet = overheads["lenet5"]
    summation = overheads["summation"]
    mobile = overheads["mobilenet"]["stats_vs_predict"]
    mobile_fresh = overheads["mobilenet"]["stats_fresh_model_vs_predict"]

    def versus_predict(entry: dict[str, Any]) -> str:
        return f"{entry['ratio']:.2f}× predict (range {min(entry['ratios']):.2f}–{max(entry['ratios']):.2f})"

    mobilenet_ratio, mobilenet_fresh = versus_predict(mobile), versus_predict(mobile_fresh)
    mobile_xla = overheads["mobilenet"].get("stats_xla_vs_predict")
    kernel_text = (
        "On a CPU, one call per step of the C kernel `worker/engine/fold_rows.c` makes every probe's six "
        "per-unit reductions (values > 0, == 0, minimum, maximum, sum, sum of (value − shift)²) in one "
        "read of the step's values, a tile of 16 units' results held in vector registers while its rows "
        "(one per example and position) stream past; a step holds at most 16 MiB of any probe's values. "
        + (
            f"The same pass with XLA's reductions instead (an install without the kernel) costs "
            f"{versus_predict(mobile_xla)} on mobilenet-v2-mini in this run: XLA reads a step's values "
            "once per reduction, so its steps hold at most 4 MiB of a probe to stay in cache, and it "
            "compiles the reductions anew for every pruned model. "
            if mobile_xla
            else "The kernel was not built for this run, so XLA made the reductions (steps of at most "
            "4 MiB of a probe's values, so they stay in cache while XLA reads them once per reduction). "
        )
    )

    def overhead(key: str) -> str:
        entry_s, entry_l = summation[key], lenet[key]
        return (
            f"{entry_s['ratio']:.2f}× (range {min(entry_s['ratios']):.2f}–{max(entry_s['ratios']):.2f}) on "
            f"the summation net and {entry_l['ratio']:.2f}× ({min(entry_l['ratios']):.2f}–"
            f"{max(entry_l['ratios']):.2f}) on LeNet-5"
        )

    validated = [summation["training_vs_fit_with_validation"], lenet["training_vs_fit_with_validation"]]
    no_overhead = all(
        min(e["ratios"]) <= 1.0 <= max(e["ratios"]) or abs(e["ratio"] - 1) < 0.05 for e in validated
    )
    rate = settings["summation"]["samples"] / summation["stats_vs_predict"]["engine_s"]
    million = 1_000_000 / rate
    parts = [
        "**vs the papers and the targets.** *Engine overheads*: relative to a bare `model.fit`, a cycle's "
        f"training costs {overhead('training_vs_fit')}; relative to a fit that also validates every epoch "
        f"(which the cycle does, to report progress), {overhead('training_vs_fit_with_validation')}"
        + (
            " — no overhead measurable on this shared machine beyond the validation itself."
            if no_overhead
            else " — beyond the validation itself the cycle adds only its progress callback, which acts once "
            "per epoch (it defines no batch hook, so Keras dispatches batches as in a bare fit); the rest "
            "is this shared machine's noise, as the per-repeat ranges show."
        )
        + " Validating only after a cycle's last epoch (`validation_every` = its epochs) costs "
        f"{overhead('training_last_validation_vs_fit')} relative to the bare fit. Relative to a plain "
        f"`model.predict` of the same examples, the statistics pass costs {overhead('stats_vs_predict')} "
        "once traced (it is traced once per model and reused for every call on it), and "
        f"{overhead('stats_fresh_model_vs_predict')} on a fresh model of the same shapes where both trace. "
        "The pass runs the probe model only up to the measured layer, the whole pass in one traced function "
        "(a `tf.while_loop` over steps, no batch returning to Python). "
        + kernel_text
        + "Every ⌈steps / 64⌉-th step keeps a share of each probe's rows, spread over its examples and "
        "positions, and the histograms count them at the end in bins over each layer's whole range (16,384 "
        "rows per pass in all). On mobilenet-v2-mini, whose 23 probes hold 1.07 MB of values per example, "
        f"the pass costs {mobilenet_ratio} once traced and {mobilenet_fresh} on a fresh model of the same "
        "shapes; a pruned model has new shapes, so each cycle traces its pass anew. "
        f"At its measured {rate:,.0f} examples/s the pass over the 1,000,000-sample summation set would take "
        f"~{million:.1f} s, against 5.1 s we measured for a per-batch Python loop over 1,000 batches before "
        "the compiled pass existed (timed on another day, so not a paired comparison).",
        "",
        f"*Latency vs FLOPs* (Hu et al. trim ip1 only, as the recipe does): the final accepted cycle "
        f"{final['cycle']} keeps ip1 = {final['widths'].get('ip1')} of 500 units, "
        f"{rows[0]['params'] / final['params']:.2f}× fewer parameters but only "
        f"{final['flops_reduction']:.2f}× fewer FLOPs — ip1 holds 93% of LeNet-5's parameters but the "
        "convolutions do most of its arithmetic — and LiteRT runs it "
        f"{final['speedup']:.2f}× faster at batch 1. "
        + (
            "The speed-up tracks the FLOPs reduction"
            if abs(final["speedup"] - final["flops_reduction"]) <= 0.1 * final["flops_reduction"]
            else (
                "The speed-up exceeds the FLOPs reduction, likely because at batch 1 the dense layer is "
                "bound by reading its 400k-weight kernel, so fewer weights save more than their FLOPs"
                if final["speedup"] > final["flops_reduction"]
                else "The speed-up falls short of the FLOPs reduction (fixed per-call and per-op overhead)"
            )
        )
        + ". Hu et al. report parameter compression (summaries say 2–3×) at equal or better accuracy, not "
        "speed; a real speed-up on LeNet-5 would need the convolutions trimmed too, and in Caffe's LeNet "
        "they have no ReLU, hence no APoZ signal.",
    ]
    first_timed = rows[0].get("format_latency", {})
    others = [fmt for fmt in time_formats if fmt in first_timed]
    if others:
        quant = ", ".join(f"{fmt} {first_timed[fmt]['speedup']:.2f}×" for fmt in others)
        int8 = [first_timed[fmt]["speedup"] for fmt in others if fmt.startswith("int8")]
        candidates = [(row["cycle"], "float32", row["speedup"]) for row in accepted] + [
            (row["cycle"], fmt, timed["speedup"])
            for row in accepted
            for fmt, timed in row.get("format_latency", {}).items()
        ]
        fastest = max(candidates, key=lambda item: item[2])
        if int8 and min(int8) > 1.05:
            verdict = (
                "so on this x86 CPU (LiteRT with XNNPACK) 8-bit models are faster, the opposite of Çallı's "
                "2017 phone, where 8-bit quantisation slowed the model down"
            )
        elif int8 and max(int8) < 0.95:
            verdict = "so 8-bit is slower here too, as Çallı found on a 2017 phone"
        else:
            verdict = "so the answer depends on the format; measure per target rather than assume"
        parts += [
            "",
            f"*Quantisation*: at cycle 0, speed-up over float32 at batch 1: {quant}; {verdict}. "
            f"Combined with trimming, the fastest model is cycle {fastest[0]} in {fastest[1]} at "
            f"{fastest[2]:.2f}× cycle 0's float32 speed.",
        ]
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run)")
    parser.add_argument("--sum-samples", type=int, default=500_000)
    parser.add_argument("--sum-epochs", type=int, default=2)
    parser.add_argument("--lenet-epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    started = time.perf_counter()
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.get_logger().setLevel("ERROR")
    where = device()
    kernel = "built" if fold_kernel.available() else "not built (XLA makes the reductions)"
    print(
        f"TensorFlow {tf.__version__} on {where}, 1 intra-op / 1 inter-op thread; statistics kernel {kernel}",
        flush=True,
    )

    sum_samples, sum_epochs, lenet_epochs, repeats = (
        args.sum_samples,
        args.sum_epochs,
        args.lenet_epochs,
        args.repeats,
    )
    runs, warmup = args.runs, args.warmup
    lenet_train = 8000
    trim_spec = load_spec(LENET_SPEC)
    formats = list(FORMATS)
    if args.quick:
        sum_samples, sum_epochs, lenet_epochs, repeats, runs, warmup = 50_000, 1, 1, 2, 100, 10
        lenet_train = 2000
        trim_spec = with_changes(
            trim_spec, training={"first_epochs": 2, "epochs": 1}, pruning={"max_cycles": 3}
        )
        formats = ["float32", "int8_dynamic"]
    time_formats = list(formats)
    settings = {
        "device": where,
        "statistics_kernel": fold_kernel.available(),
        "tf_threads": 1,
        "litert_threads": 1,
        "repeats": repeats,
        "summation": {"samples": sum_samples, "epochs": sum_epochs, "batch": 1000},
        "lenet5": {"train_samples": lenet_train, "epochs": lenet_epochs, "batch": 128},
        "latency": {"runs": runs, "warmup": warmup, "batch": 1, "formats": time_formats},
    }

    print(
        f"[1/3] summation net: {sum_samples:,} samples, {sum_epochs} epoch(s), {repeats} repeats", flush=True
    )
    sum_spec = throughput_spec(sum_samples, sum_epochs)
    sum_data = load_dataset(sum_spec.dataset, seed=0, local_paths=True)
    summation = measure_overheads(sum_spec, sum_data, repeats, progress=lambda line: print("  " + line))

    print(f"[2/3] LeNet-5 on MNIST {lenet_train:,}: {lenet_epochs} epoch(s), {repeats} repeats", flush=True)
    lenet_spec = with_changes(
        load_spec(LENET_SPEC),
        dataset={"train_samples": lenet_train},
        training={"first_epochs": lenet_epochs},
    )
    stats_n = min(lenet_spec.pruning.stats_samples or lenet_train, lenet_train)
    lenet_data = load_dataset(
        lenet_spec.dataset, seed=lenet_spec.seed, data_dirs=[args.data_dir], local_paths=True
    )
    lenet = measure_overheads(lenet_spec, lenet_data, repeats, progress=lambda line: print("  " + line))
    print(f"  {MOBILENET_SPEC.name}: statistics pass vs predict, {repeats} repeats", flush=True)
    mobilenet_spec = with_changes(load_spec(MOBILENET_SPEC), dataset={"train_samples": lenet_train})
    mobilenet_data = load_dataset(
        mobilenet_spec.dataset, seed=mobilenet_spec.seed, data_dirs=[args.data_dir], local_paths=True
    )
    mobilenet_run = _Run(mobilenet_spec, mobilenet_data, NullReporter())
    mobilenet = measure_statistics(
        mobilenet_spec, mobilenet_run, repeats, progress=lambda line: print("    " + line)
    )
    mobilenet_stats_n = len(mobilenet_run.x_stats)
    overheads = {"summation": summation, "lenet5": lenet, "mobilenet": mobilenet}
    print("  time to first epoch (load, prepare, build, compile, first step)", flush=True)
    first_epoch = time_to_first_epoch(lenet_spec, [args.data_dir], min(repeats, 3))
    print("  " + ", ".join(f"{key} {value:.2f} s" for key, value in first_epoch.items()), flush=True)
    targets, missed = targets_table(overheads)

    print(f"[3/3] LeNet-5 trimmed by APoZ; LiteRT {runs} interleaved rounds of {time_formats}", flush=True)
    report = trim_and_benchmark(trim_spec, [args.data_dir], formats, runs, warmup, 1, time_formats)
    for row in report["cycles"]:
        print(
            f"  cycle {row['cycle']}: ip1 {row['widths'].get('ip1')}, FLOPs ÷{row['flops_reduction']:.3f}, "
            f"float32 {row['latency']['median_us']:.1f} µs, speed-up {row['speedup']:.2f}×",
            flush=True,
        )

    link = write_figure(NAME, "speedup-vs-flops", latency_figure(report["cycles"], time_formats))
    lines = [
        "Ratios, each measured within one run: paired repeats alternate which path goes first, and the "
        "ratio is the median of per-repeat ratios (the per-repeat range is shown). TensorFlow uses 1 "
        f"intra-op and 1 inter-op thread, LiteRT 1 thread; {repeats} repeats per comparison. The machine "
        "(2 cores) was shared with other jobs, so absolute seconds are noisy; ratios much less so.",
        "",
        f"**Engine overheads.** Summation net (2 → 1000 ReLU → 1): {sum_samples:,} generated samples, "
        f"{sum_epochs} epoch(s), batch 1000, momentum SGD (the benchmark's default is 1,000,000 × 3 "
        f"epochs). LeNet-5: MNIST t10k {lenet_train:,} training images, {lenet_epochs} epoch(s), batch 128, "
        f"Adam; statistics on the {stats_n:,} images a cycle measures (ip1). mobilenet-v2-mini "
        f"(`examples/{MOBILENET_SPEC.name}`): the statistics pass only, on the {mobilenet_stats_n:,} images "
        "a cycle measures, every probe of its prunable groups (23 probes). Examples/s is of the engine "
        "path.",
        "",
        table(
            ["model", "comparison", "baseline s", "engine s", "ratio", "per-repeat range", "examples/s"],
            overhead_rows("summation", sum_samples, sum_samples, sum_epochs, summation)
            + overhead_rows("LeNet-5", lenet_train, stats_n, lenet_epochs, lenet)
            + overhead_rows("mobilenet-v2-mini", lenet_train, mobilenet_stats_n, 1, mobilenet),
        ),
        "",
        f"**Targets (issue 14)**, TensorFlow on {where}: "
        + ("every one met." if not missed else f"not met: {'; '.join(missed)}."),
        "",
        targets,
        "",
        "**Time to first epoch** (LeNet-5, MNIST t10k, median of "
        f"{min(repeats, 3)}): loading the data {first_epoch['load_cold']:.2f} s from the files, "
        f"{first_epoch['load_cached']:.3f} s from the worker process's cache (a second experiment on the "
        f"same data); fitting it to the model {first_epoch['prepare']:.2f} s, "
        f"build {first_epoch['build']:.2f} s, "
        f"compile {first_epoch['compile']:.2f} s, first training step (data adapter and the train "
        f"function's trace) {first_epoch['first_step']:.2f} s: **{first_epoch['total_cold']:.2f} s** from a "
        f"claim to training on fresh data, **{first_epoch['total_cached']:.2f} s** on cached data (the "
        "claim itself is one database UPDATE, not timed here).",
        "",
        f"**TFLite latency per cycle.** `examples/lenet5-apoz.yaml` ({recipe_text(trim_spec)}; "
        f"{report['data']}); stop: {report['stop_reason']}, final cycle {report['final_cycle']}. Every "
        f"cycle in {', '.join(time_formats)}, all timed at batch 1 in one interleaved LiteRT loop of {runs} "
        f"rounds ({warmup} warm-up); speed-ups are over cycle 0's float32 model, median of per-round "
        "ratios.",
        "",
        latency_table(report, time_formats),
        "",
        f"Figure: [speed-up vs FLOPs reduction]({link})",
        "",
        vs_paper(overheads, report, time_formats, settings),
    ]
    text = "\n".join(lines)
    print(text)
    data = {
        "settings": settings,
        "overheads": overheads,
        "targets": {"limits": TARGETS, "missed": missed},
        "time_to_first_epoch": first_epoch,
        "latency": report,
    }
    path = record(NAME, data, text, time.perf_counter() - started)
    print(f"recorded {path}")


if __name__ == "__main__":
    main()
