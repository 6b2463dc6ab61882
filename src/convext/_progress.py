"""Progress display for ``convext.training.fit``: the verbosity level and the progress bars
(tqdm when installed, else a one-line counter on stderr). Moved out of ``convext.training``,
which re-exports them.
"""

from __future__ import annotations

import sys
import time

import numpy as np


class _Bar:
    """A progress bar: tqdm when available, else a minimal stderr counter; silent if disabled."""

    def __init__(self, enabled, total, desc, leave):
        self.enabled, self.total, self.desc, self.n = enabled, total, desc, 0
        self._tqdm = None
        self._last = 0.0
        if not enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            self._tqdm = tqdm(
                total=total,
                desc=desc,
                leave=leave,
                unit="batch" if not leave else "epoch",
                dynamic_ncols=True,
            )

    def update(self, postfix=None):
        self.n += 1
        if not self.enabled:
            return
        if self._tqdm is not None:
            if postfix:
                self._tqdm.set_postfix(postfix, refresh=False)
            self._tqdm.update(1)
            return
        now = time.monotonic()
        if now - self._last > 0.2 or self.n == self.total:
            self._last = now
            info = "  ".join(f"{k} {v}" for k, v in (postfix or {}).items())
            sys.stderr.write(f"\r{self.desc}: {self.n}/{self.total}  {info}   ")
            sys.stderr.flush()

    def write(self, line):
        if not self.enabled:
            return
        if self._tqdm is not None:
            self._tqdm.write(line, file=sys.stderr)
        else:
            sys.stderr.write("\r" + line + "\n")
            sys.stderr.flush()

    def close(self):
        if self._tqdm is not None:
            self._tqdm.close()
        elif self.enabled and self.n and self.total:
            sys.stderr.write("\r" + " " * 79 + "\r")
            sys.stderr.flush()


def _verbosity(verbose, progress):
    """0 silent, 1 progress bars, 2 one line per epoch (no cursor codes)."""
    if progress is not None:  # the older spelling: progress=True/False
        if not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        if verbose != "auto" and bool(verbose) != bool(progress):
            raise ValueError(
                f"progress={progress!r} contradicts verbose={verbose!r}; give verbose only"
            )
        return 1 if progress else 0
    if verbose == "auto":
        isatty = getattr(sys.stderr, "isatty", None)
        try:
            return 1 if isatty is not None and isatty() else 2
        except (ValueError, OSError):  # a closed stream
            return 2
    if isinstance(verbose, (bool, np.bool_)):
        return int(verbose)
    if isinstance(verbose, (int, np.integer)) and verbose in (0, 1, 2):
        return int(verbose)
    raise ValueError(
        f"verbose must be 'auto', 0 (silent), 1 (progress bars) or 2 (one line "
        f"per epoch), got {verbose!r}"
    )
