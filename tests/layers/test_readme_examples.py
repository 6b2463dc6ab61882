"""The README's "Run a PyTorch model without PyTorch" example runs as written: its code block is
extracted and executed in a fresh interpreter where importing torch fails, next to a
``resnet18.pth`` in torch's zip format (written here without torch, by the helpers of
tests/state_dict_files.py)."""

import pathlib
import re
import subprocess
import sys
import textwrap

import numpy as np
from test_state_dict import _torch_file

from convext import models

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tested: tests/layers/test_readme_examples.py runs this block -->"

_BLOCK_TORCH = textwrap.dedent("""
    import importlib.abc, sys

    class BlockTorch(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "torch":
                raise ImportError(f"importing {name} is blocked in this test")
            return None

    sys.meta_path.insert(0, BlockTorch())
""")


def _example():
    text = README.read_text(encoding="utf-8")
    assert text.count(MARKER) == 1
    match = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", text, re.S)
    assert match, "the tested block must follow the marker"
    return match.group(1)


def test_run_a_pytorch_model_without_pytorch(tmp_path):
    source = _example()
    assert 'read_state_dict("resnet18.pth")' in source
    rng = np.random.default_rng(0)
    state = models.resnet18(rng=1).state_dict()  # torchvision's keys, random weights
    for k in state:
        if k.endswith("running_mean"):
            state[k] = rng.uniform(-0.1, 0.1, state[k].shape).astype(np.float32)
        elif k.endswith("running_var"):
            state[k] = rng.uniform(0.5, 1.5, state[k].shape).astype(np.float32)
    _torch_file(tmp_path, state, name="resnet18.pth")
    proc = subprocess.run(
        [sys.executable, "-c", _BLOCK_TORCH + source],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    printed = [int(v) for v in re.findall(r"\d+", proc.stdout.strip().splitlines()[-1])]
    # the same model and images here: the printed classes are its predictions
    model = models.resnet18().eval()
    model.load_state_dict(state)
    images = np.random.default_rng(0).random((4, 3, 224, 224), dtype=np.float32)
    assert printed == list(model(images).argmax(axis=1))
