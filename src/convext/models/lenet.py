"""LeNet-5 in its common modern form (ReLU and max pooling), for 1x28x28 input (MNIST).

A Sequential, so its keys are those of the same ``torch.nn.Sequential``::

    0 Conv2D(1, 6, 5, padding=2)  1 ReLU  2 MaxPool2D(2)
    3 Conv2D(6, 16, 5)            4 ReLU  5 MaxPool2D(2)
    6 Flatten  7 Dense(400, 120)  8 ReLU  9 Dense(120, 84)  10 ReLU  11 Dense(84, num_classes)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from ..layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from ._common import check_int, model_dtype

__all__ = ["lenet5"]


def lenet5(
    num_classes: int = 10,
    dtype: DTypeLike = np.float32,
    rng: np.random.Generator | int | None = None,
) -> Sequential:
    """LeNet-5 (61.7 k parameters at 10 classes): (N, 1, 28, 28) -> (N, num_classes) logits.
    Initialised as torch.nn's defaults from ``rng`` (a numpy Generator or seed)."""
    num_classes = check_int(num_classes, "num_classes")
    dt = model_dtype(dtype)
    model = Sequential(
        Conv2D(1, 6, 5, padding=2, dtype=dt),
        ReLU(),
        MaxPool2D(2),
        Conv2D(6, 16, 5, dtype=dt),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dense(400, 120, dtype=dt),
        ReLU(),
        Dense(120, 84, dtype=dt),
        ReLU(),
        Dense(84, num_classes, dtype=dt),
    )
    return model.reset_parameters(rng)
