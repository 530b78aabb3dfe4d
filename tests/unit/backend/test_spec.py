"""Validation of the layer language and experiment specs: fields, ranges, shapes, presets, round trips."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from prunespec.layers import MaxPoolLayer, ModelSpec, SpecShapeError, infer_shapes
from prunespec.presets import preset, preset_names
from prunespec.spec import ApozCriterion, ExperimentSpec, TrainingSpec, VarianceCriterion
from worker.engine.build import build_model


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> list[tuple[tuple[Any, ...], str]]:
    return [(tuple(error["loc"]), error["msg"]) for error in exc.value.errors()]


def _model(input_shape: list[int], *layers: dict[str, Any]) -> dict[str, Any]:
    return {"input_shape": input_shape, "layers": list(layers)}


def _experiment(**fields: Any) -> dict[str, Any]:
    return {"name": "test", "model": "lenet-5", "dataset": {"name": "mnist"}, **fields}


# --------------------------------------------------------------------------------------------- unknown fields


def test_unknown_layer_field_is_named_in_loc() -> None:
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([3], {"type": "dense", "units": 2, "unitz": 4}))
    assert _errors(exc) == [(("layers", 0, "dense", "unitz"), "Extra inputs are not permitted")]


@pytest.mark.parametrize(
    ("data", "loc"),
    [
        (_experiment(colour="red"), ("colour",)),
        (_experiment(training={"epochz": 3}), ("training", "epochz")),
        (
            _experiment(pruning={"criterion": {"type": "apoz", "kk": 1.0}}),
            ("pruning", "criterion", "apoz", "kk"),
        ),
        (_experiment(dataset={"name": "mnist", "path": "x.npz"}), ("dataset", "mnist", "path")),
        (
            {
                "name": "test",
                "model": {"input_shape": [2], "layers": [{"type": "dense", "units": 1}], "depth": 3},
                "dataset": {"name": "sum"},
            },
            ("model", "depth"),
        ),
    ],
)
def test_unknown_experiment_fields_are_named_in_loc(data: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        ExperimentSpec.model_validate(data)
    assert loc in [error_loc for error_loc, _ in _errors(exc)]


def test_unknown_layer_type_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([3], {"type": "lstm", "units": 2}))
    assert _errors(exc)[0][0] == ("layers", 0)
    assert "lstm" in str(exc.value)


# --------------------------------------------------------------------------------------------- ranges


@pytest.mark.parametrize(
    ("layer", "loc"),
    [
        ({"type": "dense", "units": 0}, ("layers", 0, "dense", "units")),
        ({"type": "dense", "units": 65537}, ("layers", 0, "dense", "units")),
        ({"type": "dense", "units": 2, "activation": "softplus"}, ("layers", 0, "dense", "activation")),
        ({"type": "dropout", "rate": 1.0}, ("layers", 0, "dropout", "rate")),
        ({"type": "dropout", "rate": -0.1}, ("layers", 0, "dropout", "rate")),
        ({"type": "batch_norm", "momentum": 1.0}, ("layers", 0, "batch_norm", "momentum")),
        ({"type": "batch_norm", "epsilon": 0.0}, ("layers", 0, "batch_norm", "epsilon")),
    ],
)
def test_layer_numbers_out_of_range_name_the_field(layer: dict[str, Any], loc: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([3], layer, {"type": "dense", "units": 1}))
    assert [error_loc for error_loc, _ in _errors(exc)] == [loc]


@pytest.mark.parametrize(
    ("layer", "field"),
    [
        ({"type": "conv2d", "filters": 0, "kernel_size": 3}, "filters"),
        ({"type": "conv2d", "filters": 2, "kernel_size": 0}, "kernel_size"),
        ({"type": "conv2d", "filters": 2, "kernel_size": 32}, "kernel_size"),
        ({"type": "conv2d_transpose", "filters": 2, "kernel_size": 3, "strides": [1, 0]}, "strides"),
        ({"type": "conv2d", "filters": 2, "kernel_size": 3, "padding": "full"}, "padding"),
    ],
)
def test_conv_numbers_out_of_range_name_the_field(layer: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([8, 8, 1], layer))
    locs = [error_loc for error_loc, _ in _errors(exc)]
    assert locs and all(loc[:3] == ("layers", 0, layer["type"]) and loc[3] == field for loc in locs)


@pytest.mark.parametrize(
    ("training", "field"),
    [
        ({"learning_rate": -0.001}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"batch_size": 0}, "batch_size"),
        ({"momentum": 1.0}, "momentum"),
        ({"l2": -1.0}, "l2"),
        ({"epochs": 0}, "epochs"),
        ({"lr_schedule": "step"}, "lr_schedule"),
    ],
)
def test_training_numbers_out_of_range_name_the_field(training: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        TrainingSpec.model_validate(training)
    assert [loc for loc, _ in _errors(exc)] == [(field,)]
    with pytest.raises(ValidationError) as exc:
        ExperimentSpec.model_validate(_experiment(training=training))
    assert [loc for loc, _ in _errors(exc)] == [("training", field)]


def test_input_shape_bounds() -> None:
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([0], {"type": "dense", "units": 1}))
    assert _errors(exc)[0][0] == ("input_shape", 0)
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([2, 2, 2, 2], {"type": "dense", "units": 1}))
    assert _errors(exc)[0][0] == ("input_shape",)


# --------------------------------------------------------------------------------------------- shapes


def test_shape_error_names_the_layer_index() -> None:
    layers = [
        {"type": "conv2d", "filters": 2, "kernel_size": 3},
        {"type": "flatten"},
        {"type": "dense", "units": 4},
        {"type": "conv2d", "name": "late", "filters": 2, "kernel_size": 3},
    ]
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([8, 8, 1], *layers))
    ((loc, message),) = _errors(exc)
    assert loc == ("layers",)
    assert "layer 3 (conv2d 'late')" in message
    assert "(4,)" in message


def test_window_larger_than_input_names_the_layer_index() -> None:
    layers = [
        {"type": "conv2d", "filters": 2, "kernel_size": 3},
        {"type": "max_pool", "pool_size": 2},
        {"type": "conv2d", "filters": 2, "kernel_size": 5},
    ]
    with pytest.raises(
        ValidationError, match=r"layer 2 \(conv2d 'conv2d_2'\): window 5x5 does not fit input 3x3"
    ):
        ModelSpec.model_validate(_model([8, 8, 1], *layers))


def test_infer_shapes_raises_spec_shape_error() -> None:
    spec = preset("lenet-5")
    with pytest.raises(SpecShapeError, match=r"^layer 0 \(conv2d 'conv1'\)"):
        infer_shapes((28, 28), spec.layers)
    assert infer_shapes((28, 28, 1), spec.layers) == spec.shapes


def test_dense_after_3d_input_needs_flatten() -> None:
    with pytest.raises(
        ValidationError, match=r"layer 0 \(dense 'dense_0'\): dense needs a 1-D input.*flatten"
    ):
        ModelSpec.model_validate(_model([4, 4, 1], {"type": "dense", "units": 3}))
    spec = ModelSpec.model_validate(_model([4, 4, 1], {"type": "flatten"}, {"type": "dense", "units": 3}))
    assert spec.shapes == [(16,), (3,)]


def test_preset_shapes() -> None:
    assert preset("lenet-5").shapes == [
        (24, 24, 20),
        (12, 12, 20),
        (8, 8, 50),
        (4, 4, 50),
        (800,),
        (500,),
        (10,),
    ]
    assert preset("mnist-autoencoder").output_shape == (28, 28, 1)
    assert [shape[:2] for shape in preset("mnist-autoencoder").shapes[::3]] == [
        (14, 14),
        (7, 7),
        (14, 14),
        (28, 28),
    ]


def test_pool_strides_default_to_pool_size() -> None:
    layer = MaxPoolLayer.model_validate({"pool_size": 3})
    assert layer.strides == (3, 3)
    spec = ModelSpec.model_validate(
        _model(
            [9, 9, 1],
            {"type": "max_pool", "pool_size": 3},
            {"type": "flatten"},
            {"type": "dense", "units": 1},
        )
    )
    assert spec.shapes[0] == (3, 3, 1)


# --------------------------------------------------------------------------------------------- names


def test_duplicate_layer_names_are_rejected() -> None:
    layers = [{"type": "dense", "name": "a", "units": 3}, {"type": "dense", "name": "a", "units": 1}]
    with pytest.raises(ValidationError, match="layer 1: name 'a' is used twice"):
        ModelSpec.model_validate(_model([2], *layers))


def test_unnamed_layers_get_type_and_index() -> None:
    spec = ModelSpec.model_validate(_model([2], {"type": "dense", "units": 3}, {"type": "dense", "units": 1}))
    assert spec.layer_names() == ["dense_0", "dense_1"]


@pytest.mark.parametrize("name", ["1st", "has space", "a/b", "x" * 65, ""])
def test_bad_layer_names_are_rejected(name: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ModelSpec.model_validate(_model([2], {"type": "dense", "name": name, "units": 1}))
    assert _errors(exc)[0][0] == ("layers", 0, "dense", "name")


def test_a_model_needs_a_weighted_layer() -> None:
    with pytest.raises(ValidationError, match="at least one dense"):
        ModelSpec.model_validate(_model([4, 4, 1], {"type": "flatten"}))


# --------------------------------------------------------------------------------------------- presets


def test_presets_load_and_unknown_preset_is_rejected() -> None:
    assert set(preset_names()) == {
        "sum-mlp",
        "lenet-300-100",
        "lenet-5",
        "mnist-autoencoder",
        "resnet-mini",
        "mobilenet-v2-mini",
    }
    for name in preset_names():
        assert isinstance(preset(name), ModelSpec)
    with pytest.raises(ValueError, match=r"unknown preset 'lenet-6'.*lenet-5"):
        preset("lenet-6")


@pytest.mark.parametrize("model", ["lenet-6", {"preset": "lenet-6"}])
def test_unknown_preset_in_experiment_names_model(model: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        ExperimentSpec.model_validate(_experiment(model=model))
    ((loc, message),) = _errors(exc)
    assert loc == ("model",)
    assert "unknown preset 'lenet-6'" in message


def test_preset_forms_are_equivalent() -> None:
    by_name = ExperimentSpec.model_validate(_experiment(model="lenet-5"))
    by_mapping = ExperimentSpec.model_validate(_experiment(model={"preset": "lenet-5"}))
    assert by_name.model == by_mapping.model == preset("lenet-5")
    with pytest.raises(ValidationError, match="cannot be combined"):
        ExperimentSpec.model_validate(_experiment(model={"preset": "lenet-5", "input_shape": [784]}))


# --------------------------------------------------------------------------------------------- pruning


@pytest.mark.parametrize(("shorthand", "cls"), [("apoz", ApozCriterion), ("variance", VarianceCriterion)])
def test_criterion_shorthand_string(shorthand: str, cls: type) -> None:
    spec = ExperimentSpec.model_validate(_experiment(pruning={"criterion": shorthand}))
    assert isinstance(spec.pruning.criterion, cls)
    assert spec.pruning.criterion == cls()


def test_unknown_criterion_shorthand_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        ExperimentSpec.model_validate(_experiment(pruning={"criterion": "magnitude"}))
    assert _errors(exc)[0][0] == ("pruning", "criterion")


@pytest.mark.parametrize("bad", ["ip2", "pool1", "nosuch"])
def test_pruning_layers_must_be_prunable(bad: str) -> None:
    with pytest.raises(ValidationError, match=rf"pruning.layers: \['{bad}'\] are not prunable"):
        ExperimentSpec.model_validate(_experiment(pruning={"layers": ["conv1", bad]}))
    spec = ExperimentSpec.model_validate(_experiment(pruning={"layers": ["conv1", "ip1"]}))
    assert spec.pruning.layers == ["conv1", "ip1"]


# --------------------------------------------------------------------------------------------- consistency


def test_crossentropy_needs_a_linear_output() -> None:
    model = _model(
        [2],
        {"type": "dense", "units": 4, "activation": "relu"},
        {"type": "dense", "units": 1, "activation": "sigmoid"},
    )
    data = {"name": "t", "model": model, "dataset": {"name": "sum"}, "training": {"loss": "crossentropy"}}
    with pytest.raises(ValidationError, match="output layer must have activation 'linear'"):
        ExperimentSpec.model_validate(data)
    ExperimentSpec.model_validate({**data, "training": {"loss": "mse"}})
    model["layers"][1]["activation"] = "linear"
    ExperimentSpec.model_validate(data)


def test_crossentropy_output_layer_must_come_last() -> None:
    model = _model([784], {"type": "dense", "units": 10}, {"type": "activation", "activation": "relu"})
    data = {"name": "t", "model": model, "dataset": {"name": "mnist"}, "training": {"loss": "crossentropy"}}
    with pytest.raises(ValidationError, match="must come last"):
        ExperimentSpec.model_validate(data)
    model["layers"][1] = {"type": "dropout", "rate": 0.5}
    ExperimentSpec.model_validate(data)


def test_dataset_model_shape_mismatch() -> None:
    with pytest.raises(
        ValidationError, match=r"inputs of shape \(2,\) do not fit model.input_shape \(28, 28, 1\)"
    ):
        ExperimentSpec.model_validate(_experiment(dataset={"name": "sum"}))
    with pytest.raises(
        ValidationError, match=r"targets of shape \(28, 28, 1\) do not fit the model's output \(10,\)"
    ):
        ExperimentSpec.model_validate(_experiment(dataset={"name": "mnist", "target": "input"}))
    # 28x28x1 images fit a 784-wide input; the autoencoder reproduces its input.
    ExperimentSpec.model_validate(_experiment(model="lenet-300-100"))
    ExperimentSpec.model_validate(
        _experiment(model="mnist-autoencoder", dataset={"name": "mnist", "target": "input"})
    )


def test_crossentropy_classes_must_match_output_width() -> None:
    model = _model([784], {"type": "dense", "units": 9})
    with pytest.raises(ValidationError, match=r"10 classes need an output of shape \(10,\)"):
        ExperimentSpec.model_validate(
            {"name": "t", "model": model, "dataset": {"name": "mnist"}, "training": {"loss": "crossentropy"}}
        )


# --------------------------------------------------------------------------------------------- round trips


FULL_EXPERIMENT = _experiment(
    model="mnist-autoencoder",
    dataset={"name": "fashion-mnist", "target": "input", "train_samples": 500},
    seed=7,
    training={"optimizer": "momentum", "learning_rate": 0.01, "loss": "rmse", "group_lasso": 1e-4},
    pruning={"criterion": {"type": "variance_band", "k": 1.5}, "layers": ["enc2", "dec1"], "max_cycles": 3},
)


@pytest.mark.parametrize("data", [FULL_EXPERIMENT, _experiment(pruning={"criterion": "apoz"})])
def test_round_trip_through_dict_and_json(data: dict[str, Any]) -> None:
    spec = ExperimentSpec.model_validate(data)
    assert ExperimentSpec.model_validate(spec.model_dump()) == spec
    assert ExperimentSpec.model_validate_json(spec.model_dump_json()) == spec
    changed = spec.model_dump()
    changed["model"]["layers"][0]["name"] = "renamed"
    assert ExperimentSpec.model_validate(changed) != spec


def test_model_round_trip_keeps_every_layer_field() -> None:
    model = preset("mnist-autoencoder")
    again = ModelSpec.model_validate_json(model.model_dump_json())
    assert again == model
    assert again.layers[6].model_dump() == {
        "name": "dec1",
        "type": "conv2d_transpose",
        "filters": 32,
        "kernel_size": (3, 3),
        "strides": (2, 2),
        "padding": "same",
        "activation": "linear",
        "use_bias": True,
        "inputs": ("enc2_relu",),  # a layer on its own names its input; the model's dump leaves it out
    }
    assert "inputs" not in model.model_dump()["layers"][6]


# --------------------------------------------------------------------------------------------- with_widths


def test_with_widths() -> None:
    spec = preset("lenet-5")
    smaller = spec.with_widths({"conv1": 7, "ip1": 33})
    assert smaller.widths() == {"conv1": 7, "conv2": 50, "ip1": 33, "ip2": 10}
    assert smaller.shapes[0] == (24, 24, 7)
    assert smaller.shapes[5] == (33,)
    assert smaller.layer_names() == spec.layer_names()
    assert spec.widths() == {"conv1": 20, "conv2": 50, "ip1": 500, "ip2": 10}
    assert spec.with_widths({}) == spec
    assert smaller.with_widths({"conv1": 20, "ip1": 500}) == spec


def test_with_widths_validates_again() -> None:
    with pytest.raises(ValidationError) as exc:
        preset("lenet-5").with_widths({"ip1": 0})
    assert _errors(exc)[0][0] == ("layers", 5, "dense", "units")


# --------------------------------------------------------------------------------------------- vs Keras


TRANSPOSE_CASES = [
    # (input h, w), kernel, strides, padding, expected (out h, out w)
    ((7, 5), (3, 3), (2, 2), "same", (14, 10)),
    ((7, 5), (3, 3), (2, 2), "valid", (15, 11)),
    ((4, 4), (2, 2), (3, 3), "valid", (12, 12)),
    ((4, 3), (2, 2), (3, 3), "same", (12, 9)),
    ((3, 5), (5, 1), (1, 2), "valid", (7, 10)),
    ((3, 3), (4, 4), (2, 2), "valid", (8, 8)),
    ((2, 6), (4, 3), (1, 1), "same", (2, 6)),
]


@pytest.mark.parametrize(("size", "kernel", "strides", "padding", "expected"), TRANSPOSE_CASES)
def test_conv2d_transpose_shapes_match_keras(
    size: tuple[int, int],
    kernel: tuple[int, int],
    strides: tuple[int, int],
    padding: str,
    expected: tuple[int, int],
) -> None:
    layer = {
        "type": "conv2d_transpose",
        "filters": 3,
        "kernel_size": kernel,
        "strides": strides,
        "padding": padding,
    }
    spec = ModelSpec.model_validate(_model([*size, 2], layer))
    assert spec.output_shape == (*expected, 3)
    if padding == "same":
        assert expected == (size[0] * strides[0], size[1] * strides[1])
    else:
        assert expected == tuple(n * s + max(k - s, 0) for n, k, s in zip(size, kernel, strides, strict=True))
    assert tuple(build_model(spec).output_shape[1:]) == spec.output_shape


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "conv2d", "filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
        {"type": "conv2d", "filters": 2, "kernel_size": [4, 2], "strides": [3, 1]},
        {"type": "max_pool", "pool_size": 3, "strides": 2, "padding": "same"},
        {"type": "avg_pool", "pool_size": [2, 3]},
    ],
)
def test_conv_and_pool_shapes_match_keras(layer: dict[str, Any]) -> None:
    spec = ModelSpec.model_validate(
        _model([11, 8, 2], layer, {"type": "flatten"}, {"type": "dense", "units": 1})
    )
    model = build_model(spec)
    assert tuple(model.get_layer(spec.layer_names()[0]).output.shape[1:]) == spec.shapes[0]


def test_layer_name_input_is_reserved() -> None:
    with pytest.raises(ValidationError, match="reserved"):
        ModelSpec.model_validate(
            {
                "input_shape": [2],
                "layers": [{"type": "dense", "name": "input", "units": 2}, {"type": "dense", "units": 1}],
            }
        )


def test_with_widths_refuses_unknown_or_unweighted_layers() -> None:
    spec = preset("lenet-5")
    with pytest.raises(ValueError, match="not weighted layers"):
        spec.with_widths({"pool1": 3})
    with pytest.raises(ValueError, match="not weighted layers"):
        spec.with_widths({"nope": 3})


def test_crossentropy_with_image_targets_says_it_needs_labels() -> None:
    with pytest.raises(ValidationError, match="crossentropy needs class labels"):
        ExperimentSpec.model_validate(
            {
                "name": "x",
                "model": "lenet-5",
                "dataset": {"name": "mnist", "target": "input"},
                "training": {"loss": "crossentropy"},
            }
        )


def test_backoff_defaults_to_no_retries_and_a_recipe_can_opt_in() -> None:
    default = ExperimentSpec.model_validate(_experiment())
    assert (default.pruning.backoff.retries, default.pruning.backoff.factor) == (0, 0.5)
    opted = ExperimentSpec.model_validate(
        _experiment(pruning={"tolerance": 0.005, "backoff": {"retries": 2, "factor": 0.25}})
    )
    assert opted.pruning.backoff.retries == 2
    assert [opted.pruning.backoff.step(r) for r in (0, 1, 2)] == [1.0, 0.25, 0.0625]
    again = ExperimentSpec.model_validate(opted.model_dump(mode="json"))
    assert again.pruning.backoff == opted.pruning.backoff


@pytest.mark.parametrize(
    ("backoff", "field"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 21}, "retries"),
        ({"retries": 1, "factor": 0.0}, "factor"),
        ({"retries": 1, "factor": 1.0}, "factor"),
        ({"retries": 1, "tries": 3}, "tries"),
    ],
)
def test_backoff_fields_are_bounded(backoff: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        ExperimentSpec.model_validate(_experiment(pruning={"tolerance": 0.01, "backoff": backoff}))
    assert [loc for loc, _ in _errors(exc)] == [("pruning", "backoff", field)]


def test_backoff_retries_need_a_tolerance() -> None:
    with pytest.raises(ValidationError) as exc:
        ExperimentSpec.model_validate(_experiment(pruning={"backoff": {"retries": 1}}))
    [(loc, message)] = _errors(exc)
    assert loc == ("pruning",) and "backoff.retries: needs a tolerance" in message


@pytest.mark.parametrize("tolerance", [-0.01, 0.2])
def test_merge_tolerance_is_bounded(tolerance: float) -> None:
    with pytest.raises(ValidationError) as exc:
        ExperimentSpec.model_validate(_experiment(pruning={"merge_tolerance": tolerance}))
    assert [loc for loc, _ in _errors(exc)] == [("pruning", "merge_tolerance")]


def test_new_recipe_fields_default_to_the_old_behaviour() -> None:
    spec = ExperimentSpec.model_validate(_experiment())
    assert spec.training.lr_schedule == "constant"
    assert spec.pruning.merge_tolerance == 0.0
