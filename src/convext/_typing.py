"""Type aliases of the public API's annotations (``numpy.typing`` based).

Arrays are accepted as anything NumPy converts (``ArrayLike``) and returned as
``NDArray[np.floating]``: float32 or float64, the dtype of the input.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import IO, Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "ArrayLike",
    "FloatArray",
    "IndexArray",
    "IntPair",
    "LossValue",
    "Padding",
    "PathOrFile",
    "Reduction",
    "Shape",
    "Grads",
]

#: a float32 or float64 array
FloatArray: TypeAlias = NDArray[np.floating[Any]]
#: the int64 indices of max pooling
IndexArray: TypeAlias = NDArray[np.int64]
#: an int, or a pair (height, width)
IntPair: TypeAlias = int | tuple[int, int] | Sequence[int]
#: an int, a pair, or a string ("valid", "same", "full" where accepted)
Padding: TypeAlias = int | tuple[int, int] | Sequence[int] | str
Reduction: TypeAlias = Literal["mean", "sum", "none"]
Shape: TypeAlias = Sequence[int]
#: a loss value: a scalar of the input's dtype, or per-element losses with reduction="none"
LossValue: TypeAlias = np.floating[Any] | FloatArray
#: (input, weight, bias) gradients; None where not asked for
Grads: TypeAlias = tuple[FloatArray | None, FloatArray | None, FloatArray | None]
#: a file name, or a binary file object
PathOrFile: TypeAlias = str | os.PathLike[str] | IO[bytes]
