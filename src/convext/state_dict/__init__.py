"""Weights from other tools, read without them: ``read_state_dict(path)``.

Three formats, recognised by their content (never by the file name):

- a PyTorch file written by ``torch.save(model.state_dict(), path)``: the zip format of
  torch >= 1.6 (``<name>/data.pkl`` holds a pickle of the dict, ``<name>/data/<key>`` the raw
  storages, ``<name>/byteorder`` their byte order) or the legacy format before it (pickles and
  raw storages one after the other, see ``_read_legacy_torch``). torch is never imported. The
  pickle is read by ``_StateDictUnpickler``, which admits only the globals a state_dict holds
  (``collections.OrderedDict``, torch's tensor rebuild functions, and torch's storage types of
  real numeric dtypes) and replaces each of them by a stand-in written here: no code from the
  file runs. Tensors are rebuilt with numpy from (storage, offset, size, stride) after checking
  that every element they address lies inside their storage.
- a ``.safetensors`` file (8-byte little-endian header length, a JSON header, raw buffers),
  read by this module (no dependency).
- convext's own ``.npz`` (``model.save``/``convext.save``): its weights, without the
  architecture entry. Array headers are read and checked against the zip member before any
  data is read; ``allow_pickle`` is never on.

A file is hostile until checked. Everything malformed (wrong magic, truncated data, bad JSON,
a forbidden pickle global, a storage missing or of the wrong size, a view pointing outside its
storage, a zip member whose declared size is out of proportion to the file) is a ValueError
naming the file. Memory is bounded by the file: zip members are read only after their declared
size is checked against a budget proportional to the archive's size; the arrays returned may
take at most ``_OUTPUT_SLACK`` plus ``_OUTPUT_FACTOR`` times the file's size (a file that
views one storage many times over, or expands a small storage with stride 0, is refused
beyond that); a pickle may have at most ``_MAX_PICKLE_OPCODES`` opcodes.
"""

from __future__ import annotations

import os
import stat
import struct
import warnings
import zipfile
import zlib
from typing import TYPE_CHECKING, Any

from ._common import _OUTPUT_FACTOR, _OUTPUT_SLACK, _UNZIP_FACTOR, _UNZIP_SLACK, _Budget
from ._npz import _read_npz
from ._safetensors import _looks_like_safetensors, _read_safetensors
from ._torch import _looks_like_legacy_torch, _read_legacy_torch, _read_torch_zip

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["read_state_dict"]


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, NDArray[Any]]:
    """Read the weights in a PyTorch, safetensors or convext file as numpy arrays.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by ``torch.save(model.state_dict(), path)`` (the zip format of
        torch >= 1.6, or the legacy format before it), a ``.safetensors`` file, or a convext
        model file (``model.save(path)``). The format is recognised from the content.

    Returns
    -------
    dict
        ``{name: numpy.ndarray}`` in the file's order, every array C-contiguous, writeable and
        in native byte order. float32 and float64 stay as they are; float16 and bfloat16 are
        widened (exactly) to float32, with a ``UserWarning`` listing them; integer tensors keep
        their type (BatchNorm's ``num_batches_tracked`` is int64) and bool stays bool.

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        The file is not one of the formats above, or is malformed, truncated or hostile: a
        pickle naming any global other than those a state_dict holds (the message names it),
        a tensor view outside its storage, sizes out of proportion to the file, a TorchScript
        archive (``torch.jit.save``: it holds code) or a whole pickled model
        (``torch.save(model)``).

    Notes
    -----
    torch is never imported and nothing in the file is executed: the pickle inside a PyTorch
    file is read by a restricted unpickler whose only globals are stand-ins written in numpy.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fspath(path)
    what = repr(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("it is not a regular file")
        size = st.st_size
        with open(path, "rb") as f:
            head = f.read(64)
        if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            with zipfile.ZipFile(path) as zf:
                result, widened = _read_zip(zf, size)
        elif _looks_like_safetensors(head, size):
            result, widened = _read_safetensors(path, size)
        elif _looks_like_legacy_torch(head):
            result, widened = _read_legacy_torch(path, size)
        else:
            raise ValueError(
                "it is neither a PyTorch zip file (torch.save), a .safetensors "
                f"file nor a convext .npz file (it starts with {head[:8]!r})"
            )
    except (FileNotFoundError, PermissionError):
        raise
    except ValueError as e:
        raise ValueError(f"cannot read a state_dict from {what}: {e}") from None
    except (
        OSError,
        EOFError,
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        zlib.error,
        KeyError,
        struct.error,
        UnicodeDecodeError,
        NotImplementedError,
        RuntimeError,
    ) as e:
        # RuntimeError: zipfile's "compression method not supported" / encrypted members
        raise ValueError(
            f"cannot read a state_dict from {what}: malformed file ({type(e).__name__}: {e})"
        ) from None
    if widened:
        shown = ", ".join(repr(k) for k in widened[:5]) + (", ..." if len(widened) > 5 else "")
        warnings.warn(
            f"read_state_dict: {len(widened)} float16/bfloat16 tensor(s) in {what} "
            f"widened to float32 ({shown})",
            UserWarning,
            stacklevel=2,
        )
    return result


# ----------------------------------------------------------------------------------- zip files


def _read_zip(zf, file_size):
    infos = zf.infolist()
    if not infos:
        raise ValueError("it is an empty zip archive")
    unzip = _Budget(_UNZIP_SLACK + _UNZIP_FACTOR * file_size, "the archive's size")
    output = _Budget(_OUTPUT_SLACK + _OUTPUT_FACTOR * file_size, "the file's size")
    pickles = [i for i in infos if i.filename.endswith("/data.pkl") and i.filename.count("/") == 1]
    if pickles:
        if len({i.filename for i in pickles}) > 1:
            raise ValueError(
                f"the archive holds several pickles "
                f"({', '.join(sorted({i.filename for i in pickles}))})"
            )
        return _read_torch_zip(zf, pickles[-1], unzip, output)
    if all(i.filename.endswith(".npy") for i in infos):
        return _read_npz(zf, infos, unzip, output)
    raise ValueError(
        "it is a zip archive but neither a PyTorch file (no '<name>/data.pkl') "
        "nor an .npz (members other than .npy)"
    )
