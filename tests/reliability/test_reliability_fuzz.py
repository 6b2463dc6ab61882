"""A fixed-length run of the fuzz target tests/reliability/fuzz_convext.py (longer runs: by hand).

CONVEXT_FUZZ_EXAMPLES sets the length (400); CONVEXT_TEST_EXAMPLES, which the sanitizer step of
CI sets for the instrumented builds, caps it like every other hypothesis test (never below 100
here: the run must still reach absurd geometry, documented errors and the oracle).
"""

import os

import fuzz_convext

EXAMPLES = int(os.environ.get("CONVEXT_FUZZ_EXAMPLES", "400"))
_CAP = os.environ.get("CONVEXT_TEST_EXAMPLES", "").strip()
if _CAP:
    EXAMPLES = min(EXAMPLES, max(int(_CAP), 100))


def test_fuzz_fixed_examples():
    before = dict(fuzz_convext.STATS)
    fuzz_convext.make_test(EXAMPLES)()
    run = {k: fuzz_convext.STATS[k] - before[k] for k in before}
    assert run["examples"] >= EXAMPLES  # hypothesis ran them all (plus explicit examples)
    assert run["ok"] > 0 and run["documented_error"] > 0  # both outcomes were exercised
    assert run["checked_vs_oracle"] > 0
    # absurd geometry (up to 2**64, one- and zero-sized planes) was both refused and computed
    assert run["absurd_refused"] > 0 and run["absurd_computed"] > 0
