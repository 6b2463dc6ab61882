"""Keeping the OpenMP team's wake-up off an optimized model's critical path.

Between calls the OpenMP worker threads spin for a while, then sleep; the first parallel region
after that wakes them and waits, at its closing barrier, until each has come and done its share.
On a virtual machine whose idle virtual CPUs are halted, that wake goes through the host's
scheduler: on the 2-vCPU machine these figures come from, a region of 5 microseconds took a
median of 22 us after 7 ms of idle, 79 us after 10 ms and 2.8 ms after 30 ms (p90 6.6 ms), and
mobilenet_v2 at batch 1 on two threads, called every 30 ms, lost 5-8 ms in its first two steps
(0.4 and 0.25 ms when called back to back). onnxruntime's own thread pool does not wait for a
worker that has not started, so its first node lost 0.5 ms.

So a plan run that starts after the team has been idle (``cold_start``) wakes a helper thread
first, which does not block, and runs its steps on one thread (each step's serial variant) until
the helper reports that it runs, that is, that a second CPU is awake; from the next step on the
steps use every thread, the OpenMP workers wake on a CPU that is already running, and the helper
stops after the first of those steps (``release``). A result is the same bits on any number of
threads (the kernels' guarantee), so the switch changes no output. In alternated calls after
30 ms of idle (the helper on and off in one process, medians of 15-30 calls) mobilenet_v2 took
0.95-0.99 of the time and resnet18 0.92-1.03; in one run during a period of slow wakes,
mobilenet_v2 took 11.1 ms where it took 19.0 (onnxruntime 11.8).
"""

import threading
import time

from ._kernels import _threads

# idle seconds after which a run counts as cold: the workers' spin-wait measured above lasted
# about 7-10 ms
TEAM_IDLE_SECONDS = 0.005
# how long a cold run waits for the helper before its first step (a CPU that is awake wakes it
# within microseconds), and the longest the helper holds its CPU when no one releases it
TEAM_FIRST_WAIT_SECONDS = 50e-6
TEAM_HOLD_SECONDS = 0.005

_lock = threading.Lock()
_wake = threading.Event()
_helper = None
_last_end = None  # time.perf_counter() at the end of the last run


def _helper_loop():
    while True:
        _wake.wait()
        _wake.clear()
        _threads.team_hold(TEAM_HOLD_SECONDS)


def cold_start(threads):
    """True when a run on ``threads`` threads starts after the team has been idle (or for the
    first time): the helper has then been woken (and waited for at most
    TEAM_FIRST_WAIT_SECONDS), the run should take each step's serial variant until ``awake()``,
    and ``release`` the helper after its first step on every thread."""
    global _helper
    if threads <= 1:
        return False
    if _last_end is not None and time.perf_counter() - _last_end < TEAM_IDLE_SECONDS:
        return False
    with _lock:
        if _helper is None or not _helper.is_alive():  # none yet, or lost in a fork
            helper = threading.Thread(target=_helper_loop, name="convext-team-waker", daemon=True)
            try:
                helper.start()
            except RuntimeError:  # no new threads (interpreter shutdown): wait as before
                return False
            _helper = helper
    _threads.team_reset()
    _wake.set()
    _threads.team_wait_awake(TEAM_FIRST_WAIT_SECONDS)
    return True


def awake():
    """True once the helper woken by ``cold_start`` runs."""
    return _threads.team_is_awake()


def release():
    """Let the helper stop (after the first step that ran on every thread, and at the end of a
    run)."""
    _threads.team_release()


def finished():
    """Record the end of a run (``cold_start`` measures the idle time from it) and release."""
    global _last_end
    _threads.team_release()
    _last_end = time.perf_counter()
