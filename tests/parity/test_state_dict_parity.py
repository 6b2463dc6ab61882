"""read_state_dict against files torch itself writes: torch.save of real state_dicts, read in a
fresh interpreter where importing torch fails, compared exactly with tensor.numpy()."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from state_dict_files import read_without_torch  # noqa: E402


class SmallCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.BatchNorm2d(8),
            torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, groups=2, bias=False),
            torch.nn.BatchNorm2d(8),
        )
        self.classifier = torch.nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def _trained_model(dtype):
    torch.manual_seed(0)
    model = SmallCNN()
    model.train()
    model(torch.randn(4, 3, 6, 6))  # BatchNorm running statistics and num_batches_tracked
    return model.to(dtype)


def _expected(t):
    if t.dtype in (torch.float16, torch.bfloat16):
        return t.float().numpy()
    return t.numpy()


def _check(entry, sd):
    assert "error" not in entry, entry.get("error")
    assert entry["keys"] == list(sd)
    assert entry["native"] and entry["contiguous"]
    got = entry["arrays"]
    for k, t in sd.items():
        exp = _expected(t)
        assert got[k].dtype == exp.dtype, k
        assert got[k].shape == exp.shape, k
        np.testing.assert_array_equal(got[k], exp, err_msg=k)


def test_models_in_every_dtype(tmp_path):
    paths, dicts = [], []
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        sd = _trained_model(dtype).state_dict()
        assert sd["features.1.num_batches_tracked"].dtype == torch.int64
        path = tmp_path / f"{str(dtype).split('.')[1]}.pth"
        torch.save(sd, path)
        paths.append(path)
        dicts.append(sd)
    report = read_without_torch(tmp_path, *paths)
    for path, sd in zip(paths, dicts, strict=True):
        entry = report[str(path)]
        _check(entry, sd)
        half = next(iter(sd.values())).dtype in (torch.float16, torch.bfloat16)
        assert bool(entry["warnings"]) == half
        if half:
            assert "widened to float32" in entry["warnings"][0]
        assert entry["arrays"]["features.1.num_batches_tracked"].dtype == np.int64


@pytest.mark.parametrize("protocol", [4, 5])
def test_newer_pickle_protocols(tmp_path, protocol):
    # protocols 4 and 5 name globals with STACK_GLOBAL and frame the stream
    sd = _trained_model(torch.float64).state_dict()
    path = tmp_path / "p.pth"
    torch.save(sd, path, pickle_protocol=protocol)
    _check(read_without_torch(tmp_path, path)[str(path)], sd)


def test_views_shared_storages_and_odd_tensors(tmp_path):
    torch.manual_seed(1)
    base = torch.randn(6, 10, dtype=torch.float64)
    wide = torch.randn(3, 1)
    tagged = torch.randn(3)
    tagged.note = "a python attribute makes torch use _rebuild_from_type_v2"
    sd = {
        "transposed": base.t(),  # non-contiguous view
        "row": base[2],  # shares base's storage, offset 20
        "window": base[1:5:2, 3:9:3],  # strided view, same storage
        "expanded": wide.expand(3, 4),  # stride 0
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "int32": torch.arange(-5, 5, dtype=torch.int32),
        "int16": torch.arange(-5, 5, dtype=torch.int16),
        "int8": torch.arange(-5, 5, dtype=torch.int8),
        "uint8": torch.arange(250, 256, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "half_t": torch.randn(4, 3).half().t(),
        "bf16_slice": torch.randn(10).bfloat16()[3:8],
        "tagged": tagged,
    }
    sd_path = tmp_path / "views.pth"
    torch.save(sd, sd_path)
    model = _trained_model(torch.float32)
    vars_path = tmp_path / "params.pth"
    torch.save(model.state_dict(keep_vars=True), vars_path)  # nn.Parameter: _rebuild_parameter
    report = read_without_torch(tmp_path, sd_path, vars_path)
    _check(report[str(sd_path)], sd)
    _check(
        report[str(vars_path)], {k: v.detach() for k, v in model.state_dict(keep_vars=True).items()}
    )


def test_safetensors_written_by_torch(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    sd = {k: v.contiguous() for k, v in _trained_model(torch.float32).state_dict().items()}
    sd["bf16"] = torch.randn(3, 2).bfloat16()
    sd["f16"] = torch.randn(5).half()
    path = tmp_path / "m.safetensors"
    st.save_file(sd, str(path))
    entry = read_without_torch(tmp_path, path)[str(path)]
    assert "error" not in entry
    got = entry["arrays"]
    assert set(got) == set(sd)
    for k, t in sd.items():
        np.testing.assert_array_equal(got[k], _expected(t), err_msg=k)
        assert got[k].dtype == _expected(t).dtype


def test_legacy_format(tmp_path):
    torch.manual_seed(2)
    sd = dict(_trained_model(torch.float32).state_dict())
    sd["transposed"] = sd["classifier.weight"].t()
    sd["half"] = torch.randn(3, 2).half()
    path = tmp_path / "old.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=False)
    _check(read_without_torch(tmp_path, path)[str(path)], sd)


def test_whole_model_pickle_refused(tmp_path):
    # torch.save(model) pickles the module class itself: a global a state_dict never holds
    path = tmp_path / "model.pth"
    torch.save(_trained_model(torch.float32), path)
    entry = read_without_torch(tmp_path, path)[str(path)]
    assert "names the global" in entry["error"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit is deprecated in torch 2.x
def test_torchscript_refused(tmp_path):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(_trained_model(torch.float32).eval()), str(path))
    entry = read_without_torch(tmp_path, path)[str(path)]
    assert "TorchScript" in entry["error"]
