"""Memory for large results, kept and handed out again (``empty``).

A fresh NumPy array of 32 MiB or more is, with glibc, a new mapping (32 MiB is glibc's largest
mmap threshold): the kernel faults in and zeroes every page of it while a convolution writes its
first results there, and zeroing 2 MB pages evicts the caches the convolution works from. At
batch 16 on two threads that was 11% of the forward time of VGG-11's 112x112 layer, 2-4% of its
56x56 layer's and 1-3% of their backward (torch's own outputs pay it too).

So results of ``MIN_BYTES`` or more come from blocks this module keeps. A block is handed out
again only when the pool's list holds the only reference to it: the arrays given out are views
of the block, and every NumPy view (and every memoryview or buffer export of one) holds a
reference to the array that owns the memory, so a block some result still uses always has
more than one. The memory of a result that is handed out again is uninitialised, as
``np.empty``'s is.

The pool holds at most ``limit()`` bytes (512 MiB, or an eighth of the physical memory if that
is less), blocks in use included; past it a result is a plain array that the pool does not
keep. ``convext.release_cached_memory()`` frees the blocks nothing else uses. On a
free-threaded interpreter reference counts are not read without races, so there the pool is
off and ``empty`` is ``np.empty``.
"""

import contextlib
import math
import os
import sysconfig
import threading

import numpy as np

from . import _config  # noqa: F401  (clamps OMP_NUM_THREADS before a kernel module loads)
from ._kernels import _conv
from ._validation import _physical_memory

MIN_BYTES = 32 << 20
MOST_BYTES = 512 << 20
_ALIGN = 64  # a result starts on a cache line

_blocks: list = []  # uint8 arrays that own their memory, least recently handed out first
_lock = threading.Lock()
_inside = threading.local()  # .pool: this thread is in the pool's code (set before it locks)
ENABLED = not sysconfig.get_config_var("Py_GIL_DISABLED")


def _new_lock():
    global _lock, _inside
    _lock, _inside = threading.Lock(), threading.local()


if hasattr(os, "register_at_fork"):  # a child's copy of the lock may be held by a parent's thread
    os.register_at_fork(after_in_child=_new_lock)


@contextlib.contextmanager
def _locked():
    """Hold the pool's lock; yields False instead when this thread is already in the pool's
    code (a finalizer or signal handler run by the garbage collector there), which must
    neither wait for itself nor change the list under that code."""
    if getattr(_inside, "pool", False):
        yield False
        return
    _inside.pool = True
    try:
        with _lock:
            yield True
    finally:
        _inside.pool = False


def limit():
    """The most bytes the pool holds: 512 MiB, or an eighth of physical memory if less (0, no
    pool, where the physical memory is unknown)."""
    return min(MOST_BYTES, _physical_memory() // 8)


def held_bytes():
    """Bytes of all the blocks kept, in use or not."""
    with _locked():
        return sum(b.nbytes for b in _blocks)


def empty(shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, like ``np.empty``: for
    ``MIN_BYTES`` or more, a view of a kept block that nothing else uses, when there is one of
    the size."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes < MIN_BYTES or not ENABLED:
        return np.empty(shape, dtype)
    size = nbytes + _ALIGN
    with _locked() as mine:
        if not mine:
            return np.empty(shape, dtype)
        block = _take(size)
        if block is None:
            keep = _make_room(size)
            try:
                block = _new_block(size)
            except MemoryError:  # the idle blocks go first, then it is the system's answer
                _release_idle()
                block = _new_block(size)
            if keep:
                _blocks.append(block)
    skip = -block.ctypes.data % _ALIGN
    return block[skip : skip + nbytes].view(dtype).reshape(shape)


def _new_block(size):
    """A block of ``size`` bytes that owns its memory."""
    return np.empty(size, np.uint8)


def _idle(i):
    """Whether nothing but the pool refers to block i (so no caller may hold a reference to a
    block while asking: no loop variable over _blocks). Once idle, a block stays idle while the
    lock is held: only the pool hands out references to it."""
    return _conv.only_in_list(_blocks, i)


def _take(size):
    """The most recently used idle block of ``size`` bytes, moved to the end of the list."""
    for i in range(len(_blocks) - 1, -1, -1):
        if _blocks[i].nbytes == size and _idle(i):
            block = _blocks.pop(i)
            _blocks.append(block)
            return block
    return None


def _make_room(size):
    """Whether a new block of ``size`` bytes fits under the limit, dropping idle blocks (least
    recently used first) as far as it needs; none are dropped when it would not fit even
    then (blocks in use are never dropped)."""
    room = limit() - sum(b.nbytes for b in _blocks)
    if room >= size:
        return True
    if room + sum(_blocks[i].nbytes for i in range(len(_blocks)) if _idle(i)) < size:
        return False
    i = 0
    while room < size and i < len(_blocks):
        if _idle(i):
            room += _blocks.pop(i).nbytes
        else:
            i += 1
    return room >= size


def _release_idle():
    """Drop every idle block; the bytes dropped."""
    freed, i = 0, 0
    while i < len(_blocks):
        if _idle(i):
            freed += _blocks.pop(i).nbytes
        else:
            i += 1
    return freed


def release_cached_memory() -> int:
    """Free the memory convext keeps for large results (arrays of 32 MiB or more, reused by the
    next result of the same size; at most 512 MiB or an eighth of physical memory) that no
    result still uses, and return how many bytes that freed."""
    with _locked() as mine:
        return _release_idle() if mine else 0
