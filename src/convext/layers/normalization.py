"""Batch normalisation over the channels of NCHW input (torch.nn.BatchNorm2d), on the compiled
``batch_norm`` kernels (statistics in double, in a fixed order: thread-count independent)."""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

from .. import functional
from .._typing import ArrayLike, FloatArray
from .._validation import check_positive_int, check_real
from .base import Layer, _array, _dtype
from .registry import register_layer

__all__ = ["BatchNorm2D"]


@register_layer
class BatchNorm2D(Layer):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel, as torch.nn.BatchNorm2d.

    In training mode mean and var are the batch's (biased variance) and the running estimates
    are updated: ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased*
    batch variance (``momentum=None``: cumulative average, ``1 / num_batches_tracked``). In
    eval mode the running estimates are used (without ``track_running_stats`` there are none
    and the batch's statistics are used in both modes, as torch). Parameters ``weight`` (ones)
    and ``bias`` (zeros) when ``affine``; buffers ``running_mean`` (zeros), ``running_var``
    (ones), ``num_batches_tracked`` (int64 scalar) when ``track_running_stats``.

    Backward works in both modes. In eval mode the statistics are constants, so
    ``dL/dx = g * weight / sqrt(running_var + eps)`` (torch's eval-mode gradient), which is how
    a network is fine-tuned with frozen statistics (``model.train(); bn.eval()``). What the
    forward pass keeps for backward: in training mode its input and statistics; in eval mode
    the same, unless the model the layer belongs to is in eval mode as a whole (then nothing
    is kept, as every layer in inference; a BatchNorm2D on its own keeps its input).

    ``momentum`` must be in [0, 1] (torch accepts any float; beyond [0, 1] the running
    statistics are no average and the running variance can turn negative). ``eps`` must be a
    positive finite number.

    Options as torch.nn.BatchNorm2d: ``momentum=None`` (cumulative average), ``affine=False``
    (no parameters), keyword ``bias=False`` (torch 2.13: an affine weight without bias),
    ``track_running_stats=False`` (no buffers), ``device`` (None or 'cpu')
    and ``dtype`` (None: float32). An empty batch (N = 0) in training mode gives an empty
    output, leaves the running statistics unchanged and still counts in
    ``num_batches_tracked``, as torch; its backward gives empty/zero gradients.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: str | None = None,
        dtype: DTypeLike | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if device is not None and str(device) != "cpu":
            raise ValueError(
                f"BatchNorm2D: device must be None or 'cpu' (convext runs on the "
                f"CPU), got {device!r}"
            )
        self.num_features = check_positive_int(num_features, "num_features")
        self.eps = check_real("BatchNorm2D: eps", eps, 0.0, low_open=True)
        # the running statistics are an average only for 0 <= momentum <= 1 (torch does not
        # check: beyond 1 the running variance can turn negative, 1e308 overflows it)
        self.momentum = (
            None
            if momentum is None
            else check_real("BatchNorm2D: momentum", momentum, 0.0, 1.0, high_open=False)
        )
        self.affine = bool(affine)
        self.bias = self.affine and bool(bias)  # as torch: no bias without affine
        self.track_running_stats = bool(track_running_stats)
        self.dtype = _dtype(np.float32 if dtype is None else dtype)
        C = self.num_features
        what = "BatchNorm2D: a per-channel array (num_features) of shape"
        if self.affine:
            self._params = {"weight": _array((C,), self.dtype, 1, what)}
            if self.bias:
                self._params["bias"] = _array((C,), self.dtype, 0)
        self._grads = {k: _array(v.shape, v.dtype, 0) for k, v in self._params.items()}
        if self.track_running_stats:
            self._buffers = {
                "running_mean": _array((C,), self.dtype, 0, what),
                "running_var": _array((C,), self.dtype, 1),
                "num_batches_tracked": _array((), np.int64, 0),
            }
        self._saved = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self._buffers["running_mean"].fill(0)
            self._buffers["running_var"].fill(1)
            self._buffers["num_batches_tracked"].fill(0)

    def reset_parameters(self, rng=None):
        self.reset_running_stats()
        if self.affine:
            self._params["weight"].fill(1)
        if "bias" in self._params:
            self._params["bias"].fill(0)
        return self

    def _keeps_input(self):
        """Training mode, or eval mode unless the whole model is in eval mode (inference)."""
        if self.training:
            return True
        root = self
        while root._owner() is not None:
            root = root._owner()
        return root is self or root.training

    def forward(self, x: ArrayLike) -> FloatArray:
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2D: x must have shape (N, {self.num_features}, H, W), got {x.shape}"
            )
        if x.dtype != self.dtype:
            raise TypeError(f"BatchNorm2D: x has dtype {x.dtype} but the layer is {self.dtype}")
        use_batch = self.training or not self.track_running_stats
        rm = rv = None
        momentum = 0.0
        if self.track_running_stats:
            b = self._buffers
            rm, rv = b["running_mean"], b["running_var"]
            if self.training:
                if x.shape[0] * x.shape[2] * x.shape[3] == 1:
                    raise ValueError(
                        f"BatchNorm2D: expected more than 1 value per channel "
                        f"when training, got input of shape {x.shape}"
                    )
                b["num_batches_tracked"] += 1
                momentum = (
                    1.0 / float(b["num_batches_tracked"])
                    if self.momentum is None
                    else self.momentum
                )
        y, mean, invstd = functional.batch_norm(
            x,
            rm,
            rv,
            self._params.get("weight"),
            self._params.get("bias"),
            training=use_batch,
            momentum=momentum,
            eps=self.eps,
            return_stats=True,
        )
        self._saved = (x, mean, invstd, use_batch) if self._keeps_input() else None
        return y

    def backward(self, grad_out: ArrayLike, needs_input_grad: bool = True) -> FloatArray | None:
        if self._saved is None:
            raise RuntimeError(
                "BatchNorm2D.backward needs a forward pass first (in training "
                "mode, or of the layer in eval mode inside a model in training "
                "mode)"
            )
        x, mean, invstd, use_batch = self._saved
        g = np.asarray(grad_out)
        if g.shape != x.shape:
            raise ValueError(
                f"BatchNorm2D.backward: grad_out must have shape {x.shape}, got {g.shape}"
            )
        gx, gw, gb = functional.batch_norm_backward(
            g,
            x,
            mean,
            invstd,
            self._params.get("weight"),
            training=use_batch,
            needs_input_grad=needs_input_grad,
        )
        if self.affine:
            self._grads["weight"] += gw
        if "bias" in self._grads:
            self._grads["bias"] += gb
        self._saved = None
        return gx

    def get_config(self):
        return dict(
            num_features=self.num_features,
            eps=self.eps,
            momentum=self.momentum,
            affine=self.affine,
            track_running_stats=self.track_running_stats,
            dtype=self.dtype.name,
            bias=self.bias,
        )

    def extra_repr(self):
        # torch 2.13 prints all five settings
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias}, "
            f"track_running_stats={self.track_running_stats}"
            + ("" if self.dtype == np.float32 else f", dtype={self.dtype.name}")
        )
