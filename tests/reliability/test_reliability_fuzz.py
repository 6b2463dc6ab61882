"""A fixed-length run of the fuzz target tests/reliability/fuzz_convext.py (longer runs: by
hand)."""
import os

import fuzz_convext

EXAMPLES = int(os.environ.get("CONVEXT_FUZZ_EXAMPLES", "400"))


def test_fuzz_fixed_examples():
    before = dict(fuzz_convext.STATS)
    fuzz_convext.make_test(EXAMPLES)()
    run = {k: fuzz_convext.STATS[k] - before[k] for k in before}
    assert run["examples"] >= EXAMPLES  # hypothesis ran them all (plus explicit examples)
    assert run["ok"] > 0 and run["documented_error"] > 0  # both outcomes were exercised
    assert run["checked_vs_oracle"] > 0
