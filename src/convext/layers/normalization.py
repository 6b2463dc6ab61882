"""Batch normalisation over the channels of NCHW input (torch.nn.BatchNorm2d).

The statistics are per-channel reductions over (N, H, W); the layer computes them with
whole-array NumPy operations (no compiled kernel, no element loop).
"""
import numpy as np

from .._validation import check_positive_int
from .base import Layer, _array, _dtype
from .registry import register_layer

__all__ = ["BatchNorm2D"]

_AXES = (0, 2, 3)


def _c(v):
    """A per-channel vector shaped to broadcast against (N, C, H, W)."""
    return v[:, None, None]


@register_layer
class BatchNorm2D(Layer):
    """``y = (x - mean) / sqrt(var + eps) * weight + bias`` per channel, as torch.nn.BatchNorm2d.

    In training mode mean and var are the batch's (biased variance) and the running estimates
    are updated: ``running = (1 - momentum) * running + momentum * batch`` with the *unbiased*
    batch variance (``momentum=None``: cumulative average). In eval mode the running estimates
    are used. Parameters ``weight`` (ones) and ``bias`` (zeros) when ``affine``; buffers
    ``running_mean`` (zeros), ``running_var`` (ones), ``num_batches_tracked`` (int64 scalar)
    when ``track_running_stats``. Keeps the normalised input and 1/std for backward.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float32):
        super().__init__()
        self.num_features = check_positive_int(num_features, "num_features")
        self.eps = float(eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.dtype = _dtype(dtype)
        C = self.num_features
        if self.affine:
            self._params = {"weight": _array((C,), self.dtype, 1),
                            "bias": _array((C,), self.dtype, 0)}
        self._grads = {k: _array(v.shape, v.dtype, 0) for k, v in self._params.items()}
        if self.track_running_stats:
            self._buffers = {"running_mean": _array((C,), self.dtype, 0),
                             "running_var": _array((C,), self.dtype, 1),
                             "num_batches_tracked": _array((), np.int64, 0)}
        self._xhat = self._invstd = None

    def reset_running_stats(self):
        if self.track_running_stats:
            self._buffers["running_mean"].fill(0)
            self._buffers["running_var"].fill(1)
            self._buffers["num_batches_tracked"].fill(0)

    def reset_parameters(self, rng=None):
        self.reset_running_stats()
        if self.affine:
            self._params["weight"].fill(1)
            self._params["bias"].fill(0)
        return self

    def forward(self, x):
        x = np.ascontiguousarray(x)  # layout-independent results
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"BatchNorm2D: x must have shape (N, {self.num_features}, H, W), "
                             f"got {x.shape}")
        if x.dtype != self.dtype:
            raise TypeError(f"BatchNorm2D: x has dtype {x.dtype} but the layer is {self.dtype}")
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            n = x.shape[0] * x.shape[2] * x.shape[3]
            if n <= 1:
                raise ValueError(f"BatchNorm2D: expected more than 1 value per channel when "
                                 f"training, got input of shape {x.shape}")
            mean = x.mean(axis=_AXES)
            xc = x - _c(mean)
            var = np.mean(xc * xc, axis=_AXES)
            if self.training and self.track_running_stats:
                b = self._buffers
                b["num_batches_tracked"] += 1
                m = (1.0 / float(b["num_batches_tracked"]) if self.momentum is None
                     else self.momentum)
                b["running_mean"] *= 1 - m
                b["running_mean"] += m * mean
                b["running_var"] *= 1 - m
                b["running_var"] += (m * n / (n - 1)) * var
        else:
            xc = x - _c(self._buffers["running_mean"])
            var = self._buffers["running_var"]
        invstd = (1 / np.sqrt(var + self.eps)).astype(self.dtype, copy=False)
        xhat = xc * _c(invstd)
        if self.affine:
            y = xhat * _c(self._params["weight"]) + _c(self._params["bias"])
        else:
            y = xhat
        if self.training:
            self._xhat, self._invstd = xhat, invstd
            self._batch_stats = use_batch
        return y

    def backward(self, grad_out, needs_input_grad=True):
        if self._xhat is None:
            raise RuntimeError("BatchNorm2D.backward needs a forward pass in training mode first")
        g = np.ascontiguousarray(grad_out)
        xhat, invstd = self._xhat, self._invstd
        if g.shape != xhat.shape:
            raise ValueError(f"BatchNorm2D.backward: grad_out must have shape {xhat.shape}, "
                             f"got {g.shape}")
        sum_g = g.sum(axis=_AXES)
        sum_gx = (g * xhat).sum(axis=_AXES)
        if self.affine:
            self._grads["weight"] += sum_gx
            self._grads["bias"] += sum_g
        self._xhat = self._invstd = None
        if not needs_input_grad:
            return None
        scale = invstd * self._params["weight"] if self.affine else invstd
        if not self._batch_stats:
            return g * _c(scale)
        n = g.shape[0] * g.shape[2] * g.shape[3]
        return (g - _c(sum_g / n) - xhat * _c(sum_gx / n)) * _c(scale)

    def get_config(self):
        return dict(num_features=self.num_features, eps=self.eps, momentum=self.momentum,
                    affine=self.affine, track_running_stats=self.track_running_stats,
                    dtype=self.dtype.name)

    def extra_repr(self):
        # torch prints all four settings
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
            + ("" if self.dtype == np.float32 else f", dtype={self.dtype.name}"))
