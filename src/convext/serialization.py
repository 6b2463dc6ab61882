"""Saving and loading models: one ``.npz`` file, no pickle, and a loader that treats the file
as hostile until checked.

The file is a zip archive holding, next to the weights (one ``.npy`` member per
``state_dict`` key), the member ``__convext_model__.npy``: a 0-d unicode array with the
architecture as JSON::

    {"format": "convext-model", "version": 1,
     "model": {"type": "Sequential", "config": {"layers": [{"type": "Conv2D", "config": {...}},
                                                          ...]}}}

File names: ``save(model, path)`` writes exactly ``path`` and ``load(path)`` reads exactly
``path``; no suffix is added or guessed either way (so ``save(m, "ckpt")`` then
``load("ckpt")`` is the same file). ``save`` is atomic: it writes a temporary file in the same
directory, flushes and fsyncs it, then ``os.replace``-s it over ``path``; if anything fails
the temporary file is removed and an existing ``path`` is left as it was.

What ``load`` checks, in this order, before it allocates or decompresses anything sizeable
(anything wrong is a ValueError naming the file):

1. The archive: zip members only stored or deflated, not encrypted, no duplicate names; their
   compressed sizes add up to no more than the file holds, and a stored member's declared size
   is its stored size (so stored data must really be in the file).
2. The architecture member: a ``.npy`` header declaring a 0-d unicode array of at most
   ``MAX_ARCH_CHARS`` characters, whose declared size is exactly header + data; then the JSON:
   nesting at most ``MAX_JSON_DEPTH`` brackets (counted before parsing, so no RecursionError),
   no NaN, ``format`` and ``version``.
3. Each layer description: a registered layer type (``convext.layers.LAYERS``), only the
   fields its ``get_config`` writes, each of the right JSON type and range (sizes and
   geometry are ints in ``1..MAX_SIZE``, padding ``0..MAX_SIZE``, flags are JSON booleans,
   dtype is ``"float32"``/``"float64"``, floats are finite...), layer descriptions nested at
   most ``MAX_NESTING`` deep (``convext.layers.registry``). The layers are then built by
   their own constructors (all their checks run) inside ``layers.base.unallocated()``: no
   array is allocated and nothing is randomly initialised; this gives the exact shape and
   dtype of every parameter and buffer.
4. The members: exactly one per ``state_dict`` key; each one's ``.npy`` header (read without
   the data) must declare exactly the expected shape and dtype: float32/float64 as the layer
   (int64 for BatchNorm's ``num_batches_tracked``), in either byte order; strings, objects,
   datetimes, structured, complex and other dtypes are refused, never cast. The member's
   declared uncompressed size must be exactly header + data.
5. Decompression: deflated members may not inflate in total to more than
   ``max(INFLATION_FREE_BYTES, MAX_INFLATION * compressed bytes)`` (a zip bomb; ``save``
   writes stored members, whose data is physically in the file).

Only then are the arrays allocated (exactly what the architecture needs, which the file has
just been checked to supply) and filled by streaming each member in chunks.

Where things live: the file format (archive checks, JSON bounds, member headers, atomic
writing) is ``convext._archive``, which knows nothing about layers; layer descriptions and
their validation are ``convext.layers.registry``; this module joins them to read a model. It
imports the layers, never the reverse (``Layer.save`` writes through ``_archive``).
"""

from __future__ import annotations

import os
import zipfile
import zlib

from numpy.lib import format as npformat

from . import _archive

# re-exported: each limit is defined once, next to the code that applies it
from ._archive import ARCH_KEY, MAX_ARCH_CHARS, MAX_JSON_DEPTH, Refused, _write_npz  # noqa: F401
from ._typing import PathOrFile
from .layers.base import Layer, unallocated
from .layers.registry import MAX_AXIS, MAX_NESTING, MAX_SIZE, layer_from_spec, layer_spec  # noqa: F401

__all__ = ["load", "save", "layer_spec", "layer_from_spec"]


def save(model: Layer, path: PathOrFile) -> None:
    """Write ``model``'s architecture and weights to ``path``, atomically: ``model.save(path)``
    (see ``Layer.save``)."""
    if not isinstance(model, Layer):
        raise TypeError(f"save: model must be a convext Layer, got {type(model).__name__}")
    Layer.save(model, path)


def _read_model(zf, archive_bytes):
    meta, members = _archive.read_members(zf, archive_bytes)
    with unallocated():  # the constructors' checks, no memory, no random initialisation
        model = layer_from_spec(meta.get("model"))
    if not isinstance(model, Layer):
        raise Refused("the architecture does not describe a layer")
    own = model.parameters()
    own.update(model.buffers())
    headers = _archive.read_arrays(zf, members, own)
    model._allocate()  # exactly what the checked file supplies
    arrays = model.parameters()
    arrays.update(model.buffers())
    _archive.fill(zf, headers, arrays)
    return model


def load(path: PathOrFile) -> Layer:
    """Rebuild a model written by ``save`` (or ``model.save``) from ``path`` (read exactly as
    given) or a binary file object.

    The file is untrusted: everything listed in the module docstring is checked before any
    array is allocated or any data decompressed, and the layers are built without random
    initialisation, their weights coming from the file. Anything else than a valid convext
    model file raises ValueError naming the file (FileNotFoundError if there is no file).
    """
    return read_archive(path, _read_model, "a convext model")


def read_archive(path, reader, what_kind):
    """Open ``path`` (a name, read exactly as given, or a binary file object) as a zip archive
    and return ``reader(zipfile, archive_bytes)``; every failure becomes a ValueError
    "cannot load {what_kind} from {path}: ..." (FileNotFoundError stays). ``load`` and
    ``convext.training.load_checkpoint`` share it."""
    what = f"{path!r}" if isinstance(path, (str, bytes, os.PathLike)) else "the file"
    try:
        if isinstance(path, (str, bytes, os.PathLike)):
            f = open(path, "rb")
        else:
            f = path
        try:
            start = f.tell()
            magic = f.read(6)
            archive_bytes = f.seek(0, os.SEEK_END) - start
            f.seek(start)
            if magic == npformat.MAGIC_PREFIX:
                raise Refused("it holds a single array, not an .npz archive")
            with zipfile.ZipFile(f) as zf:
                return reader(zf, archive_bytes)
        finally:
            if f is not path:
                f.close()
    except FileNotFoundError as e:
        if (
            isinstance(path, (str, os.PathLike))
            and not os.fspath(path).endswith(".npz")
            and os.path.exists(os.fspath(path) + ".npz")
        ):
            raise FileNotFoundError(
                f"{e}; there is {os.fspath(path) + '.npz'!r}: convext's save writes the name "
                f"it is given, and load reads it, neither adds '.npz'"
            ) from None
        raise
    except ValueError as e:  # ours, and the constructors' (already naming the layer)
        raise ValueError(f"cannot load {what_kind} from {what}: {e}") from None
    except (
        zipfile.BadZipFile,
        zlib.error,
        EOFError,
        OSError,
        KeyError,
        NotImplementedError,
        OverflowError,
    ) as e:
        raise ValueError(
            f"cannot load {what_kind} from {what}: not a valid .npz file "
            f"({type(e).__name__}: {str(e)[:200]})"
        ) from None
    except (RecursionError, MemoryError) as e:
        raise ValueError(
            f"cannot load {what_kind} from {what}: {type(e).__name__} while reading it"
        ) from None
