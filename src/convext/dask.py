"""Inference on Dask: ``convext.dask.predict(model, X)`` for a dask array ``X`` (the optional
extra ``pip install "convext[dask]"``).

The model travels as its model file's bytes (``model.save``: architecture JSON and weights, no
pickle), once: with a ``dask.distributed`` client active they are scattered to every worker
(``client.scatter(..., broadcast=True)``); otherwise they are one node of the graph
(``dask.delayed``), which the threaded scheduler shares in memory. Each worker process rebuilds
the model once (``convext.load``, kept in a small per-process cache keyed by the bytes' SHA-256)
and runs every block it is given with convext's own threads, in eval mode (several blocks may
run at once in one worker: eval-mode inference is thread-safe). The result is a lazy dask
array chunked like ``X`` along the batch: no block is predicted before ``.compute()`` (with a
client, the model's bytes are scattered when ``predict`` is called).

Results equal ``convext.predict(model, X.compute())`` bitwise, for any chunking and any number
of threads (convext's results do not depend on the batch size or the thread count).

Threads: a dask worker runs ``nthreads`` tasks at once and convext runs each call on
``convext.get_num_threads()`` OpenMP threads (OMP_NUM_THREADS, else the CPUs it may use), so
a worker process may use ``nthreads x convext threads`` cores. On a machine with C cores run
either one worker thread per process and let convext use C / processes threads, or many worker
threads and ``convext.set_num_threads(1)`` in the workers (``client.run(convext.set_num_threads,
1)``, or ``OMP_NUM_THREADS=1`` in the workers' environment).

Hyperparameter search of ``convext.sklearn`` estimators on a cluster needs nothing from this
module: ``with joblib.parallel_backend("dask"): GridSearchCV(..., n_jobs=-1).fit(X, y)``.
"""

import hashlib
import io
import math
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["predict"]

_CACHE = OrderedDict()  # SHA-256 of the model bytes -> the model, in eval mode
_CACHE_SIZE = 4
_LOCK = threading.Lock()
_LOADS = 0  # models rebuilt in this process (tests check that it is once per worker)


def _model(blob, digest):
    global _LOADS
    with _LOCK:
        model = _CACHE.get(digest)
        if model is None:
            from .serialization import load

            model = load(io.BytesIO(blob)).eval()
            _LOADS += 1
            _CACHE[digest] = model
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
        else:
            _CACHE.move_to_end(digest)
    return model


def _predict_block(block, blob, digest, batch_size, out_tail, out_dtype):
    if len(block) == 0:
        return np.empty((0,) + out_tail, out_dtype)
    from .training import predict as _predict

    return _predict(_model(blob, digest), block, batch_size)


def _client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def predict(model, X, batch_size=256):
    """The model's outputs on the dask array ``X`` (N, ...), as a lazy dask array.

    ``X`` is used chunked along its first axis (the batch); chunks along the other axes are
    merged first. Each block is predicted by ``convext.predict`` (eval mode, ``batch_size``
    samples at a time) on the worker, with the model sent to each worker once (see the module
    docstring). The output's chunks along the batch are ``X``'s; its dtype is the model's.
    """
    import dask
    import dask.array as da

    from .layers.base import Layer
    from .training import _check_batch_size

    if not isinstance(model, Layer):
        raise TypeError(f"model must be a convext Layer, got {type(model).__name__}")
    if not isinstance(X, da.Array):
        raise TypeError(
            f"X must be a dask array (for a numpy array use convext.predict), got "
            f"{type(X).__name__}"
        )
    if X.ndim < 1:
        raise ValueError("X must have a sample axis (N, ...), got a 0-d array")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}")
    if any(math.isnan(s) for s in X.shape[1:]):  # before the sizes are used (rechunk, probe)
        raise ValueError(
            f"X must have known sizes along its sample axes (every axis but the first), got "
            f"shape {X.shape}; use X.compute_chunk_sizes()"
        )
    batch_size = _check_batch_size(batch_size)
    if any(len(c) > 1 for c in X.chunks[1:]):
        X = X.rechunk({i: -1 for i in range(1, X.ndim)})
    # the output's shape and dtype: one local eval-mode forward of one zero sample
    probe = np.zeros((1,) + X.shape[1:], X.dtype)
    from .training import predict as _predict

    out = _predict(model, probe, 1)
    out_tail, out_dtype = out.shape[1:], out.dtype
    buf = io.BytesIO()
    model.save(buf)
    blob = buf.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    client = _client()
    if client is not None:
        shared = client.scatter(blob, broadcast=True, hash=True)
    else:
        shared = dask.delayed(blob, pure=True, name=f"convext-model-{digest}")
    chunks = (X.chunks[0],) + tuple((s,) for s in out_tail)
    drop = tuple(range(1, X.ndim))
    new = tuple(range(1, len(out_tail) + 1))
    return da.map_blocks(
        _predict_block,
        X,
        shared,
        digest,
        batch_size,
        out_tail,
        out_dtype,
        chunks=chunks,
        dtype=out_dtype,
        drop_axis=drop if X.ndim > 1 else (),
        new_axis=new if new else None,
        meta=np.empty((0,) + out_tail, out_dtype),
        name=f"convext-predict-{digest[:16]}",
    )
