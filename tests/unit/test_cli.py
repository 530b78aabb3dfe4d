"""The ``prunelab`` command line: bad input exits 2 with a message, ``run`` writes a results directory."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from backend.cli import field_path, main
from prunespec.spec import ExperimentSpec, load_spec

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXPECTED_EXAMPLES = {"sum-vanilla.yaml", "sum-distortion.yaml", "mnist-autoencoder.yaml", "lenet5-apoz.yaml"}


def tiny_sum_spec(**pruning: object) -> dict[str, object]:
    """A summation net with 16 hidden units on 2,000 samples, two cycles, that prunes in cycle 0."""
    return {
        "name": "tiny sum",
        "seed": 1,
        "model": {
            "input_shape": [2],
            "layers": [
                {"type": "dense", "name": "hidden", "units": 16, "activation": "relu"},
                {"type": "dense", "name": "out", "units": 1},
            ],
        },
        "dataset": {"name": "sum", "train_samples": 2000, "test_samples": 200},
        "training": {"optimizer": "momentum", "learning_rate": 0.01, "batch_size": 200, "epochs": 1},
        # Almost every unit lies inside mean ± 100·var of the layer's variances, so cycle 0 removes
        # the capped half and cycle 1 runs; max_cycles stops it there.
        "pruning": {
            "criterion": {"type": "variance_band", "k": 100},
            "max_fraction": 0.5,
            "max_cycles": 2,
            "stats_samples": 500,
            **pruning,
        },
    }


def write_yaml(path: Path, data: object) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_run_missing_spec_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["run", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "no such file" in err
    assert "Traceback" not in err


def test_run_invalid_yaml_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: broken\nmodel: [sum-mlp\n", encoding="utf-8")
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "not valid YAML" in err
    assert "Traceback" not in err


def test_run_spec_that_is_not_a_mapping_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_yaml(tmp_path / "list.yaml", ["sum-mlp"])
    assert main(["run", str(spec)]) == 2
    assert "mapping" in capsys.readouterr().err


def test_run_unknown_field_exits_2_naming_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_sum_spec()
    data["training"] = {"optimizer": "adam", "learnig_rate": 0.1}
    spec = write_yaml(tmp_path / "typo.yaml", data)
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "training.learnig_rate: Extra inputs are not permitted" in err


def test_invalid_layer_field_is_named_without_the_union_tag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_sum_spec()
    data["model"] = {
        "input_shape": [2],
        "layers": [{"type": "dense", "units": 0}, {"type": "dense", "units": 1}],
    }
    data["dataset"] = {"name": "sum", "colour": "red"}
    spec = write_yaml(tmp_path / "bad.yaml", data)
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "model.layers.0.units: Input should be greater than or equal to 1" in err
    assert "dataset.colour: Extra inputs are not permitted" in err
    assert "dense.units" not in err and "sum.colour" not in err


def test_spec_level_error_is_reported_without_pydantic_prefix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tiny_sum_spec(layers=["out"])
    spec = write_yaml(tmp_path / "bad-layers.yaml", data)
    assert main(["run", str(spec)]) == 2
    err = capsys.readouterr().err
    assert "pruning.layers: ['out'] are not prunable layers" in err
    assert "Value error" not in err


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("model", "layers", 1, "dense", "units"), "model.layers.1.units"),
        (("pruning", "criterion", "apoz", "k"), "pruning.criterion.k"),
        (("dataset", "sum", "low"), "dataset.low"),
        (("training", "epochs"), "training.epochs"),
        ((), ""),
    ],
)
def test_field_path_drops_union_tags(loc: tuple[int | str, ...], expected: str) -> None:
    data = {
        "model": {"layers": [{"type": "dense"}, {"type": "dense"}]},
        "pruning": {"criterion": {"type": "apoz", "k": -1}},
        "dataset": {"name": "sum", "low": 2},
        "training": {},
    }
    assert field_path(loc, data) == expected


def test_no_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2


def test_examples_are_all_present() -> None:
    assert EXPECTED_EXAMPLES <= {path.name for path in EXAMPLES_DIR.glob("*.yaml")}


@pytest.mark.parametrize("path", sorted(EXAMPLES_DIR.glob("*.yaml")), ids=lambda path: path.name)
def test_example_validates(path: Path) -> None:
    spec = load_spec(path)
    assert spec.name == path.stem
    assert spec.model.prunable_names(), "an example must have something to prune"


def test_mnist_examples_load_from_the_shared_t10k_files(mnist_t10k_dir: Path) -> None:
    from worker.engine.data import load_dataset  # NumPy only: no TensorFlow

    for name in ("mnist-autoencoder.yaml", "lenet5-apoz.yaml"):
        spec = load_spec(EXAMPLES_DIR / name)
        data = load_dataset(spec.dataset, seed=spec.seed, data_dirs=[mnist_t10k_dir])
        assert len(data.x_train) == spec.dataset.train_samples, name
        assert len(data.x_test) == spec.dataset.test_samples, name


def test_run_with_missing_dataset_files_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.keras/datasets
    monkeypatch.delenv("PRUNELAB_DATA_DIR", raising=False)
    data = tiny_sum_spec()
    data["model"] = "lenet-300-100"
    data["dataset"] = {"name": "mnist"}
    data["training"] = {"loss": "crossentropy"}
    data["pruning"] = {}
    spec = write_yaml(tmp_path / "mnist.yaml", data)
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"

    assert main(["run", str(spec), "--data-dir", str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "mnist: no data files found" in err
    assert str(empty) in err
    assert "Traceback" not in err
    assert not out.exists(), "nothing is written when the data cannot be loaded"


def test_run_writes_results_json_final_model_and_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path = write_yaml(tmp_path / "tiny.yaml", tiny_sum_spec())
    out = tmp_path / "out"

    assert main(["run", str(spec_path), "--out", str(out)]) == 0

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert len(results["cycles"]) == 2
    assert [cycle["index"] for cycle in results["cycles"]] == [0, 1]
    first, second = results["cycles"]
    assert first["widths"] == {"hidden": 16, "out": 1}
    assert first["widths_after"]["hidden"] < 16
    assert second["widths"]["hidden"] == first["widths_after"]["hidden"]
    assert results["stop_reason"] == "max_cycles"
    assert results["final_index"] == 1
    assert set(results["versions"]) >= {"tensorflow", "keras"}
    assert results["spec"]["name"] == "tiny sum"
    assert (out / "final.keras").stat().st_size > 0
    assert load_spec(out / "spec.yaml") == ExperimentSpec.model_validate(tiny_sum_spec())

    captured = capsys.readouterr()
    table = captured.out.splitlines()
    assert table[0].split()[:2] == ["cycle", "widths"]
    assert table[1].split()[:3] == ["0", "hidden", f"16→{first['widths_after']['hidden']}"]
    assert table[2].startswith("1*")
    assert "cycles" in captured.err  # the progress bar


def test_run_quiet_prints_nothing_on_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec_path = write_yaml(tmp_path / "tiny.yaml", tiny_sum_spec(max_cycles=1))
    out = tmp_path / "out"

    assert main(["run", str(spec_path), "--out", str(out), "--quiet"]) == 0

    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cycles" not in captured.err
    assert (out / "results.json").is_file()


def test_run_cancelled_after_a_cycle_writes_that_cycle_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import local_run

    original = local_run.ProgressReporter.on_cycle

    def cancel_after_cycle(self: local_run.ProgressReporter, *args: Any) -> None:
        original(self, *args)
        self.cancel()  # what the first Ctrl-C does

    monkeypatch.setattr(local_run.ProgressReporter, "on_cycle", cancel_after_cycle)
    spec_path = write_yaml(tmp_path / "tiny.yaml", tiny_sum_spec(max_cycles=3))
    out = tmp_path / "out"

    assert main(["run", str(spec_path), "--out", str(out), "--quiet"]) == 130

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["stop_reason"] == "cancelled"
    assert [cycle["index"] for cycle in results["cycles"]] == [0]
    assert (out / "final.keras").is_file()


def test_first_ctrl_c_cancels_and_second_interrupts() -> None:
    from worker.local_run import ProgressReporter, sigint_cancels

    reporter = ProgressReporter(1, quiet=True)
    before = signal.getsignal(signal.SIGINT)
    with sigint_cancels(reporter):
        assert not reporter.cancelled()
        os.kill(os.getpid(), signal.SIGINT)
        assert reporter.cancelled()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before
