"""Graph patterns that need no hand-written backward: ``Residual``, ``Concat``, ``Identity``.

For anything else, a composite layer assigns its layers to attributes and writes ``forward``
and ``backward``; the backward reads like the chain rule, one line per step, and a tensor used
twice gets the sum of its gradients. A ResNet basic block (torchvision's names, so its
``state_dict`` keys are torchvision's)::

    @convext.register_layer
    class BasicBlock(convext.Layer):
        def __init__(self, in_channels, channels, stride=1, dtype="float32"):
            super().__init__()
            self.in_channels, self.channels, self.stride = in_channels, channels, stride
            self.dtype = np.dtype(dtype)
            self.conv1 = Conv2D(in_channels, channels, 3, stride, 1, bias=False, dtype=dtype)
            self.bn1 = BatchNorm2D(channels, dtype=dtype)
            self.relu1 = ReLU()
            self.conv2 = Conv2D(channels, channels, 3, 1, 1, bias=False, dtype=dtype)
            self.bn2 = BatchNorm2D(channels, dtype=dtype)
            self.relu2 = ReLU()                  # one instance per use
            self.downsample = None
            if stride != 1 or in_channels != channels:
                self.downsample = Sequential(
                    Conv2D(in_channels, channels, 1, stride, bias=False, dtype=dtype),
                    BatchNorm2D(channels, dtype=dtype))

        def get_config(self):                    # what save needs to rebuild it
            return dict(in_channels=self.in_channels, channels=self.channels,
                        stride=self.stride, dtype=self.dtype.name)

        def forward(self, x):
            out = self.relu1(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu2(out + shortcut)

        def backward(self, grad_out, needs_input_grad=True):
            g = self.relu2.backward(grad_out)    # dL/d(out + shortcut), shared by both terms
            g_shortcut = g if self.downsample is None else self.downsample.backward(g)
            g_mid = self.relu1.backward(self.conv2.backward(self.bn2.backward(g)))
            g_x = self.conv1.backward(self.bn1.backward(g_mid))
            return g_x + g_shortcut              # x feeds both branches: gradients add

The backward runs the forward's steps in reverse (bn2, conv2, relu1, bn1, conv1 for the
main branch); each layer call returns dL/d(its input) and adds its parameter gradients.
"""

from __future__ import annotations

import numpy as np

from .._typing import ArrayLike, FloatArray
from .base import Layer
from .container import _check_layer
from .registry import register_layer

__all__ = ["Concat", "Identity", "Residual"]


@register_layer
class Identity(Layer):
    """Returns its input (torch.nn.Identity); its gradient passes through."""

    def forward(self, x: ArrayLike) -> FloatArray:
        return x

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        return grad_out if needs_input_grad else None


@register_layer
class Residual(Layer):
    """``body(x) + shortcut(x)``; the shortcut is the identity when None. Children ``body`` and
    ``shortcut``. Backward: dL/dx = body's input gradient + shortcut's (x is used twice)."""

    def __init__(self, body, shortcut=None):
        super().__init__()
        self.body = _check_layer(body, "Residual: body")
        self.shortcut = None if shortcut is None else _check_layer(shortcut, "Residual: shortcut")

    def forward(self, x: ArrayLike) -> FloatArray:
        y = self.body(x)
        s = np.asarray(x) if self.shortcut is None else self.shortcut(x)
        if np.shape(y) != np.shape(s):
            raise ValueError(
                f"Residual: body output has shape {np.shape(y)} but the shortcut "
                f"gives {np.shape(s)}; they are added"
            )
        return y + s

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        g_body = self.body.backward(grad_out, needs_input_grad=needs_input_grad)
        if self.shortcut is None:
            g_shortcut = grad_out
        else:
            g_shortcut = self.shortcut.backward(grad_out, needs_input_grad=needs_input_grad)
        return g_body + g_shortcut if needs_input_grad else None

    def get_config(self):
        return {"body": self.body, "shortcut": self.shortcut}


@register_layer
class Concat(Layer):
    """The branches' outputs, each computed from the same input, concatenated along ``axis``
    (default 1: channels, as ``torch.cat(..., dim=1)`` in Inception and U-Net blocks).
    Children ``"0"``, ``"1"``... Backward: the gradient is split along ``axis``, each branch
    gets its part, and the input gradients of the branches are summed."""

    _config_fields = ("branches", "axis")
    _layer_list_fields = ("branches",)

    def __init__(self, *branches, axis=1):
        super().__init__()
        if not branches:
            raise ValueError("Concat: needs at least one branch")
        for i, branch in enumerate(branches):
            _check_layer(branch, f"Concat: branch {i}")
        if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Concat: axis must be an int, got {axis!r}")
        self.axis = int(axis)
        for i, branch in enumerate(branches):
            self._adopt(str(i), branch)
        self._sizes = None

    @classmethod
    def from_config(cls, config):
        return cls(*config["branches"], axis=config.get("axis", 1))

    def forward(self, x: ArrayLike) -> FloatArray:
        outs = [branch(x) for branch in self._children.values()]
        ndim = np.ndim(outs[0])
        if not -ndim <= self.axis < ndim:
            raise ValueError(
                f"Concat: axis {self.axis} is out of range for outputs with {ndim} dimensions"
            )
        axis = self.axis % ndim
        shapes = [np.shape(o) for o in outs]
        rest = [s[:axis] + s[axis + 1 :] for s in shapes]
        if any(len(s) != ndim or r != rest[0] for s, r in zip(shapes, rest, strict=True)):
            raise ValueError(
                f"Concat: the branches' outputs {shapes} differ outside axis {self.axis}"
            )
        # kept for backward in training mode only: eval-mode calls only read (thread safety)
        self._sizes = [s[axis] for s in shapes] if self.training else None
        return np.concatenate(outs, axis=axis)

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._sizes is None:
            raise RuntimeError("Concat.backward needs a forward pass in training mode first")
        g = np.asarray(grad_out)
        parts = np.split(g, np.cumsum(self._sizes)[:-1], axis=self.axis)
        self._sizes = None
        total = None
        for branch, part in zip(self._children.values(), parts, strict=True):
            gx = branch.backward(part, needs_input_grad=needs_input_grad)
            if needs_input_grad:
                total = gx if total is None else total + gx
        return total

    def get_config(self):
        return {"branches": list(self._children.values()), "axis": self.axis}

    def extra_repr(self):
        return "" if self.axis == 1 else f"axis={self.axis}"
