"""Pruning criteria, each defined once: its spec fields and defaults, its removal rule, its thresholds
and its label.

A criterion reads one per-unit *measure* of a layer (or dependency group): an activation statistic
(``apoz``, ``active``, ``variance``) or a weight statistic (``bn_scale``: |γ| of the batch norm after the
producer; ``weight_norm``: the L1/L2 norm of each unit's incoming weights). From the measure's values it
answers three questions, used by the engine (``worker.engine.criteria``) and by the criterion figure
(``backend.figures.criterion``) alike:

- :meth:`CriterionBase.verdict`: which units it removes (mask) and in which order (score, higher first);
- :meth:`CriterionBase.thresholds`: where the rule's edges lie on the measure (the figure's lines);
- :meth:`CriterionBase.importance`: a per-layer normalised importance (lower = less important,
  comparable across layers), ranked globally by ``pruning.target``.

Statistics are population ones (``ddof=0``) over the layer's units. Band rules compare strictly, so a
layer whose values are all equal selects nothing by a band rule.

Adding a criterion = one class here (added to :data:`CRITERION_TYPES`) plus its tests.

Pure Python; the rules import NumPy when they run, so validating a spec (the web side) loads no NumPy.
This module never imports TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from prunespec.layers import ModelSpec, StrictModel

if TYPE_CHECKING:  # NumPy loads only when a rule runs: the web side validates specs without it
    import numpy as np
    import numpy.typing as npt

    FloatArray = npt.NDArray[np.float64]
    BoolArray = npt.NDArray[np.bool_]

#: Where a criterion's measure comes from.
Source = Literal["activations", "weights"]


@dataclass(frozen=True)
class Threshold:
    """One edge of a criterion's rule on its measure, where the figure draws a vertical line.

    Attributes:
        value: the threshold on the criterion's measure.
        text: how it was computed, e.g. "mean + 1·std = 0.6312".
    """

    value: float
    text: str


def fmt(value: float, digits: int = 6) -> str:
    """A number for a threshold's text: integers with thousands separators, else ``digits`` significant
    digits (as the figures print numbers)."""
    finite = float(value)
    if finite.is_integer() and abs(finite) < 1e15:
        return f"{int(finite):,}"
    return f"{finite:.{digits}g}"


def _floats(values: npt.ArrayLike) -> FloatArray:
    import numpy as np

    return np.asarray(values, dtype=np.float64)


def _none(values: FloatArray) -> BoolArray:
    import numpy as np

    return np.zeros(values.shape, dtype=np.bool_)


def normalised(values: npt.ArrayLike) -> FloatArray:
    """Values divided by their mean over the layer (all ones when the mean is 0).

    Args:
        values: a layer's non-negative per-unit magnitudes.

    Returns:
        float64 array, mean 1 unless every value is 0.
    """
    import numpy as np

    array = _floats(values)
    centre = float(array.mean()) if array.size else 0.0
    if centre <= 0 or not math.isfinite(centre):
        return np.ones(array.shape, dtype=np.float64)
    return array / centre


def _at_most(values: npt.ArrayLike, threshold: float) -> tuple[BoolArray, FloatArray]:
    """A fixed-threshold rule: remove values at most ``threshold``; the smallest go first."""
    array = _floats(values)
    return array <= threshold, -array


def _fixed(threshold: float) -> Threshold:
    return Threshold(float(threshold), f"threshold = {fmt(threshold)}")


def _label_as_title(schema: dict[str, Any], cls: type[Any]) -> None:
    """JSON schema (and OpenAPI) title of a criterion = its label, so forms read labels from the API."""
    label = getattr(cls, "label", "")
    if label:
        schema["title"] = label


class CriterionBase(StrictModel):
    """What every criterion defines; subclasses set the class variables and the rule.

    Class attributes:
        label: the criterion's name for people (forms, tables, figures).
        measure: the per-unit value it reads (a ``LayerStats``/``UnitStats`` attribute, or a weight
            statistic for ``source == "weights"``).
        measure_title: the measure's axis title, with its unit.
        measure_short: the measure's short name in hover texts.
        source: "activations" or "weights".
    """

    model_config = ConfigDict(**StrictModel.model_config, json_schema_extra=_label_as_title)

    label: ClassVar[str] = ""
    measure: ClassVar[str] = "apoz"
    measure_title: ClassVar[str] = "APoZ (fraction of outputs that are zero)"
    measure_short: ClassVar[str] = "APoZ"
    source: ClassVar[Source] = "activations"

    def verdict(self, values: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
        """The rule on one layer's measure.

        Args:
            values: (units,) the measure per unit.

        Returns:
            (mask, score): True for the units it removes; higher score = remove first.
        """
        import numpy as np

        array = _floats(values)
        return _none(array), np.zeros(array.shape, dtype=np.float64)

    def thresholds(self, values: npt.ArrayLike) -> list[Threshold]:
        """The rule's edges on a layer's finite values (none for rules without edges)."""
        return []

    def importance(self, values: npt.ArrayLike) -> FloatArray:
        """Per-unit importance normalised per layer (lower = less important; mean 1 across the layer)."""
        return normalised(values)


class _ReadsActivationCount(CriterionBase):
    """A criterion on the activation count (outputs > 0 per unit)."""

    measure: ClassVar[str] = "active"
    measure_title: ClassVar[str] = "activation count (outputs above 0)"
    measure_short: ClassVar[str] = "active"


class _ReadsVariance(CriterionBase):
    """A criterion on the output variance per unit."""

    measure: ClassVar[str] = "variance"
    measure_title: ClassVar[str] = "output variance (activation units²)"
    measure_short: ClassVar[str] = "variance"


class ActivationCountCriterion(_ReadsActivationCount):
    """Çallı: remove units active (output > 0) on at most ``threshold`` measured outputs.

    Score ``-active`` (least active first).
    """

    label: ClassVar[str] = "Activation count (Çallı)"

    type: Literal["activation_count"] = "activation_count"
    threshold: int = Field(default=0, ge=0)

    def verdict(self, values: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
        return _at_most(values, self.threshold)

    def thresholds(self, values: npt.ArrayLike) -> list[Threshold]:
        return [_fixed(self.threshold)]


class CountBandCriterion(_ReadsActivationCount):
    """Çallı: remove units whose activation count lies outside mean ± k·std of the layer's counts.

    The band is closed (a count on its edge stays). Score ``|active − mean| − k·std``.
    """

    label: ClassVar[str] = "Activation-count band (Çallı)"

    type: Literal["count_band"] = "count_band"
    k: float = Field(default=2.0, gt=0.0, le=100.0)

    def verdict(self, values: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
        import numpy as np

        counts = _floats(values)
        if counts.size == 0:
            return _none(counts), counts
        distance = np.abs(counts - counts.mean()) - self.k * counts.std()
        mask = distance > 0
        if np.ptp(counts) == 0:
            mask[:] = False
        return mask, distance

    def thresholds(self, values: npt.ArrayLike) -> list[Threshold]:
        return _band(_floats(values), self.k, "std")


class ApozCriterion(CriterionBase):
    """Hu et al.: remove units whose APoZ exceeds the layer's mean APoZ by more than k standard deviations.

    Strict: when every unit has the same APoZ nothing is removed. Score ``apoz``; importance ``1 − apoz``.
    """

    label: ClassVar[str] = "APoZ (Hu et al.)"

    type: Literal["apoz"] = "apoz"
    k: float = Field(default=1.0, ge=0.0, le=100.0)

    def verdict(self, values: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
        import numpy as np

        apoz = _floats(values)
        if apoz.size == 0 or np.ptp(apoz) == 0:
            return _none(apoz), apoz
        return apoz > apoz.mean() + self.k * apoz.std(), apoz

    def thresholds(self, values: npt.ArrayLike) -> list[Threshold]:
        finite = _floats(values)
        if finite.size == 0:
            return []
        value = float(finite.mean()) + self.k * float(finite.std())
        return [Threshold(value, f"mean + {fmt(self.k)}·std = {fmt(value, 4)}")]

    def importance(self, values: npt.ArrayLike) -> FloatArray:
        return normalised(1.0 - _floats(values))


class VarianceCriterion(_ReadsVariance):
    """Çallı: remove units whose output variance is at most ``threshold``. Score ``-variance``."""

    label: ClassVar[str] = "Variance (Çallı)"

    type: Literal["variance"] = "variance"
    threshold: float = Field(default=1e-6, ge=0.0)

    def verdict(self, values: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
        return _at_most(values, self.threshold)

    def thresholds(self, values: npt.ArrayLike) -> list[Threshold]:
        return [_fixed(self.threshold)]


class VarianceBandCriterion(_ReadsVariance):
    """Çallı's autoencoder rule: remove units with mean(v) − k·var(v) < v < mean(v) + k·var(v).

    ``v`` are the layer's unit variances and ``var(v)`` the variance of those variances; the band is open,
    so when all variances are equal nothing is removed. Score ``−|v − mean(v)|``.
    """

    label: ClassVar[str] = "Variance band (Çallı)"

    type: Literal["variance_band"] = "variance_band"
    k: float = Field(default=2.0, gt=0.0, le=100.0)

    def verdict(self, values: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
        import numpy as np

        variance = _floats(values)
        if variance.size == 0 or np.ptp(variance) == 0:
            return _none(variance), np.zeros(variance.shape, dtype=np.float64)
        centre, spread = variance.mean(), variance.var()
        mask = (centre - self.k * spread < variance) & (variance < centre + self.k * spread)
        return mask, -np.abs(variance - centre)

    def thresholds(self, values: npt.ArrayLike) -> list[Threshold]:
        return _band(_floats(values), self.k, "var")


class _MagnitudeRule(CriterionBase):
    """Shared rule of the weight criteria: small normalised magnitude goes.

    A unit's normalised score is its magnitude divided by the layer's mean magnitude. It is removed when
    that score is at most ``threshold``, and, with ``fraction > 0``, the ``floor(fraction · width)``
    units of lowest score are removed too (ties: lower index first). Score ``−normalised`` (the smallest
    first).
    """

    source: ClassVar[Source] = "weights"

    threshold: float = Field(
        default=0.05, ge=0.0, le=1.0, description="remove units at most this fraction of the layer's mean"
    )
    fraction: float = Field(
        default=0.0, ge=0.0, lt=1.0, description="also remove this fraction of each layer's lowest units"
    )

    def verdict(self, values: npt.ArrayLike) -> tuple[BoolArray, FloatArray]:
        import numpy as np

        magnitude = np.abs(_floats(values))
        if magnitude.size == 0:
            return _none(magnitude), magnitude
        score = normalised(magnitude)
        mask = score <= self.threshold
        lowest = math.floor(self.fraction * magnitude.size + 1e-9)
        if lowest > 0:
            order = np.lexsort((np.arange(magnitude.size), score))
            mask[order[:lowest]] = True
        return mask, -score

    def thresholds(self, values: npt.ArrayLike) -> list[Threshold]:
        import numpy as np

        magnitude = np.abs(_floats(values))
        if magnitude.size == 0:
            return []
        centre = float(magnitude.mean())
        value = self.threshold * centre
        return [Threshold(value, f"{fmt(self.threshold)}·mean = {fmt(value, 4)}")]

    def importance(self, values: npt.ArrayLike) -> FloatArray:
        import numpy as np

        return normalised(np.abs(_floats(values)))


class BnScaleCriterion(_MagnitudeRule):
    """Liu et al. 2017 (Network Slimming): a channel's score is |γ| of the batch norm right after its
    producer.

    Removes channels whose |γ| is at most ``threshold`` times the layer's mean |γ|, plus the lowest
    ``fraction`` per cycle. Pair with ``training.bn_l1`` to push unneeded γ toward 0. Every pruned layer
    needs a batch norm after it (checked when the spec is validated).
    """

    label: ClassVar[str] = "BN scale |γ| (Liu et al.)"
    measure: ClassVar[str] = "bn_scale"
    measure_title: ClassVar[str] = "batch-norm scale |γ|"
    measure_short: ClassVar[str] = "|γ|"

    type: Literal["bn_scale"] = "bn_scale"


class WeightNormCriterion(_MagnitudeRule):
    """Li et al. 2017: a unit's score is the L1 or L2 norm of its incoming weights (a filter's kernel).

    Removes units whose norm is at most ``threshold`` times the layer's mean norm, plus the lowest
    ``fraction`` per cycle. Works on any dense/convolution layer, linear ones included.
    """

    label: ClassVar[str] = "Weight norm (Li et al.)"
    measure: ClassVar[str] = "weight_norm"
    measure_title: ClassVar[str] = "norm of the unit's incoming weights"
    measure_short: ClassVar[str] = "norm"

    type: Literal["weight_norm"] = "weight_norm"
    norm: Literal["l1", "l2"] = "l1"


class NoCriterion(CriterionBase):
    """Remove nothing by criterion (exact reductions such as constant folding still apply)."""

    label: ClassVar[str] = "None (exact reductions only)"

    type: Literal["none"] = "none"


def _band(values: FloatArray, k: float, word: str) -> list[Threshold]:
    if values.size == 0:
        return []
    centre = float(values.mean())
    spread = float(values.std()) if word == "std" else float(values.var())
    low, high = centre - k * spread, centre + k * spread
    return [
        Threshold(low, f"mean − {fmt(k)}·{word} = {fmt(low, 4)}"),
        Threshold(high, f"mean + {fmt(k)}·{word} = {fmt(high, 4)}"),
    ]


#: Every criterion class, in the order forms list them.
CRITERION_TYPES: tuple[type[CriterionBase], ...] = (
    ApozCriterion,
    ActivationCountCriterion,
    CountBandCriterion,
    VarianceCriterion,
    VarianceBandCriterion,
    BnScaleCriterion,
    WeightNormCriterion,
    NoCriterion,
)

AnyCriterion = (
    ApozCriterion
    | ActivationCountCriterion
    | CountBandCriterion
    | VarianceCriterion
    | VarianceBandCriterion
    | BnScaleCriterion
    | WeightNormCriterion
    | NoCriterion
)

Criterion = Annotated[AnyCriterion, Field(discriminator="type")]


def _type_of(cls: type[CriterionBase]) -> str:
    return str(cls.model_fields["type"].default)


#: Criterion class by its ``type``.
CRITERIA: dict[str, type[CriterionBase]] = {_type_of(cls): cls for cls in CRITERION_TYPES}

#: Label by criterion ``type`` (for people: forms, tables, figures).
LABELS: dict[str, str] = {kind: cls.label for kind, cls in CRITERIA.items()}


def criterion_shorthand(value: Any) -> Any:
    """``"apoz"`` → ``{"type": "apoz"}``; anything else unchanged."""
    return {"type": value} if isinstance(value, str) else value


def parse_criterion(value: Any) -> CriterionBase:
    """A criterion from its spec (a mapping or just its type), defaults filled in.

    Raises:
        ValueError: an unknown type (naming the known ones) or invalid parameters.
    """
    written = criterion_shorthand(value)
    kind = str(dict(written).get("type", "apoz")) if isinstance(written, dict) else ""
    if kind not in CRITERIA:
        raise ValueError(f"unknown criterion '{kind}'; known: {sorted(CRITERIA)}")
    return CRITERIA[kind].model_validate({"type": kind, **dict(written)})


# --------------------------------------------------------------------------------------------- model facts

#: Layer types a channel passes through unchanged per channel on its way from its producer to a batch norm.
_PER_CHANNEL = frozenset({"activation", "dropout", "max_pool", "avg_pool", "zero_padding2d", "upsampling2d"})


def _next_layers(model: ModelSpec, name: str) -> list[str]:
    """The layers that read ``name``'s output (by ``consumers_of`` on graph specs, else the next layer)."""
    consumers = getattr(model, "consumers_of", None)
    if callable(consumers):
        return [str(consumer) for consumer in consumers(name)]
    names = model.layer_names()
    index = names.index(name)
    return names[index + 1 : index + 2]


def bn_after(model: ModelSpec, name: str) -> str | None:
    """The batch norm right after a channel producer, through per-channel layers (activation, dropout,
    pooling, padding, upsampling), or None when the channels meet anything else first.

    Args:
        model: the architecture.
        name: the producer's layer name.

    Returns:
        the batch norm's layer name, or None.
    """
    types = {layer.name: layer.type for layer in model.layers}
    current = name
    while True:
        following = _next_layers(model, current)
        if len(following) != 1:
            return None
        current = following[0]
        kind = types.get(current)
        if kind == "batch_norm":
            return current
        if kind not in _PER_CHANNEL:
            return None
