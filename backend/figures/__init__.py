"""Pure figure builders: rows in, Plotly figure dicts out (no I/O, no database, no TensorFlow).

The API maps its rows or schemas into the light inputs of :mod:`backend.figures.inputs` (each has an
``of`` constructor) and returns the figure dicts as JSON; the browser draws them with
``Plotly.newPlot``/``Plotly.react``. Every user-typed string is escaped by
:func:`backend.figures.common.escape` before it enters a figure.
"""

from backend.figures.activations import activation_heatmap_figure
from backend.figures.common import NO_DATA, PALETTE, CycleMarks, Figure, empty_figure, escape
from backend.figures.compare import MAX_COMPARED, compare_loss_figure, compare_widths_figure
from backend.figures.criterion import Threshold, criterion_figure, criterion_measure, criterion_thresholds
from backend.figures.cycles import costs_figure, metric_flops_figure, widths_figure
from backend.figures.inputs import (
    CycleRow,
    EpochPoint,
    ExperimentSeries,
    LayerCostRow,
    LayerHistogram,
    TFLiteRow,
    UnitStats,
)
from backend.figures.pareto import (
    ParetoPoint,
    higher_is_better,
    pareto_figure,
    pareto_front,
    pareto_points,
)
from backend.figures.tables import (
    CompareRow,
    CompareTable,
    LayerDiff,
    architecture_diff,
    compare_csv,
    compare_table,
)
from backend.figures.tflite import speedup_figure, tflite_figure
from backend.figures.training import EpochAxis, epoch_axis, training_figure

__all__ = [
    "MAX_COMPARED",
    "NO_DATA",
    "PALETTE",
    "CompareRow",
    "CompareTable",
    "CycleMarks",
    "CycleRow",
    "EpochAxis",
    "EpochPoint",
    "ExperimentSeries",
    "Figure",
    "LayerCostRow",
    "LayerDiff",
    "LayerHistogram",
    "ParetoPoint",
    "TFLiteRow",
    "Threshold",
    "UnitStats",
    "activation_heatmap_figure",
    "architecture_diff",
    "compare_csv",
    "compare_loss_figure",
    "compare_table",
    "compare_widths_figure",
    "costs_figure",
    "criterion_figure",
    "criterion_measure",
    "criterion_thresholds",
    "empty_figure",
    "epoch_axis",
    "escape",
    "higher_is_better",
    "metric_flops_figure",
    "pareto_figure",
    "pareto_front",
    "pareto_points",
    "speedup_figure",
    "tflite_figure",
    "training_figure",
    "widths_figure",
]
