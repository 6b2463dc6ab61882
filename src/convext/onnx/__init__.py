"""ONNX import: ``convext.onnx.load(path_or_bytes)`` -> a trainable ``convext.layers.Graph``.

Parsing needs the ``onnx`` package (``pip install convext[onnx]``); running and training the
imported graph needs nothing but convext. See ``load`` for the operators and the checks made
on the (untrusted) file.
"""

from . import _ops  # noqa: F401  (registers the Onnx* node layers, so saved graphs load)
from ._import import DEFAULT_MAX_BYTES, SUPPORTED_OPS, load

__all__ = ["load", "SUPPORTED_OPS", "DEFAULT_MAX_BYTES"]
