# The C kernel of fold_rows.c (built by setup.py); see worker/engine/fold_kernel.py.
from collections.abc import Sequence

from numpy.typing import NDArray

def fold(
    values: Sequence[NDArray],
    widths: Sequence[int],
    shift: NDArray,
    active: NDArray,
    zeros: NDArray,
    minimum: NDArray,
    maximum: NDArray,
    sums: NDArray,
    squares: NDArray,
    threads: int,
    /,
) -> None: ...
