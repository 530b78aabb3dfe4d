"""The trimming loop on a graph: a residual group shrinks in every producer at once."""

from __future__ import annotations

from prunespec.spec import ExperimentSpec
from worker.engine.cycle import run_cycles
from worker.engine.data import load_dataset


def test_a_residual_group_shrinks_through_cycles() -> None:
    spec = ExperimentSpec.model_validate(
        {
            "name": "tiny-residual",
            "seed": 5,
            "model": {
                "input_shape": [2],
                "layers": [
                    {"type": "dense", "name": "d0", "units": 8, "activation": "relu"},
                    {"type": "dense", "name": "d1", "units": 6, "activation": "relu"},
                    {"type": "dense", "name": "d2", "units": 8},
                    {"type": "add", "name": "skip", "inputs": ["d0", "d2"]},
                    {"type": "activation", "name": "skip_relu", "activation": "relu"},
                    {"type": "dense", "name": "out", "units": 1},
                ],
            },
            "dataset": {"name": "sum", "train_samples": 300, "test_samples": 100},
            "training": {"learning_rate": 0.01, "batch_size": 100, "epochs": 1, "loss": "mse"},
            "pruning": {"criterion": {"type": "apoz", "k": 0.0}, "max_fraction": 0.5, "max_cycles": 2},
        }
    )
    assert spec.model.prunable_names() == ["d0", "d1"]

    result = run_cycles(spec, load_dataset(spec.dataset, seed=spec.seed))

    first, second = result.cycles
    assert first.removed["d0"] and set(first.removed) <= {"d0", "d1"}
    width = 8 - len(first.removed["d0"])
    assert first.widths_after["d0"] == first.widths_after["d2"] == width
    assert second.widths["d0"] == second.widths["d2"] == width
    assert second.spec.layers[2].units == width  # type: ignore[union-attr]
    assert second.stats["d0"].units == width and second.stats["d0"].layer == "d0"
    assert result.model is not None and result.model.get_layer("d2").units == width
