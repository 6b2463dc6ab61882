"""model.save / convext.load: round trip, no pickle, clear errors on bad files."""

import json
import zipfile

import numpy as np
import pytest

import convext as cx
from convext import layers as L


def _model():
    return L.Sequential(
        L.Conv2D(1, 4, 3, padding="same", rng=0),
        L.BatchNorm2D(4),
        L.LeakyReLU(0.1),
        L.MaxPool2D(2, ceil_mode=True),
        L.Conv2D(4, 6, (3, 2), stride=2, groups=2, bias=False, rng=1),
        L.ELU(),
        L.AvgPool2D(2, padding=1, count_include_pad=False),
        L.LPPool2D(2, 1),
        L.Dropout(0.25),
        L.GlobalAvgPool2D(),
        L.Flatten(),
        L.Dense(6, 5, dtype=np.float32, rng=2),
        L.Sigmoid(),
        L.Sequential(L.Dense(5, 3, rng=3), L.Tanh()),
        L.Softmax(1),
    )


def test_round_trip(tmp_path):
    model = _model()
    x = np.random.default_rng(0).standard_normal((3, 1, 12, 12)).astype(np.float32)
    model(x)  # update BatchNorm's running statistics
    model.eval()
    path = tmp_path / "m.npz"
    model.save(path)
    loaded = cx.load(path)
    assert repr(loaded) == repr(model)
    sd, sd2 = model.state_dict(), loaded.state_dict()
    assert list(sd) == list(sd2)
    for k in sd:
        assert sd2[k].dtype == sd[k].dtype
        np.testing.assert_array_equal(sd2[k], sd[k])
    loaded.eval()
    np.testing.assert_array_equal(loaded(x), model(x))


def test_file_holds_json_and_no_objects(tmp_path):
    path = tmp_path / "m.npz"
    L.Sequential(L.Dense(2, 2)).save(path)
    with np.load(path, allow_pickle=False) as f:  # loads without pickle
        arch = json.loads(str(f["__convext_model__"]))
        assert all(f[k].dtype != object for k in f.files)
    assert arch["model"]["type"] == "Sequential"
    assert arch["model"]["config"]["layers"][0] == {
        "type": "Dense",
        "config": {"in_features": 2, "out_features": 2, "bias": True, "dtype": "float32"},
    }


def _write_arch(path, arch, **arrays):
    np.savez(path, __convext_model__=np.array(json.dumps(arch)), **arrays)


def test_bad_files(tmp_path):
    good = tmp_path / "good.npz"
    _model().save(good)
    data = good.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot load a convext model"):
        cx.load(truncated)

    noise = tmp_path / "noise.npz"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="cannot load a convext model"):
        cx.load(noise)

    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.ones(3))
    with pytest.raises(ValueError, match="__convext_model__"):
        cx.load(foreign)

    single = tmp_path / "single.npy"
    np.save(single, np.ones(3))
    with pytest.raises(ValueError, match="not an .npz"):
        cx.load(single)

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, __convext_model__=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="cannot load"):
        cx.load(pickled)

    unknown = tmp_path / "unknown.npz"
    _write_arch(
        unknown,
        {"format": "convext-model", "version": 1, "model": {"type": "os.system", "config": {}}},
    )
    with pytest.raises(ValueError, match="unknown layer type 'os.system'"):
        cx.load(unknown)

    badjson = tmp_path / "badjson.npz"
    np.savez(badjson, __convext_model__=np.array("{not json"))
    with pytest.raises(ValueError, match="not valid JSON"):
        cx.load(badjson)

    version = tmp_path / "version.npz"
    _write_arch(version, {"format": "convext-model", "version": 99, "model": {}})
    with pytest.raises(ValueError, match="version 99"):
        cx.load(version)

    badcfg = tmp_path / "badcfg.npz"
    _write_arch(
        badcfg,
        {
            "format": "convext-model",
            "version": 1,
            "model": {"type": "Dense", "config": {"in_features": 2, "colour": 1}},
        },
    )
    with pytest.raises(ValueError, match="invalid configuration for layer Dense"):
        cx.load(badcfg)

    missing = tmp_path / "missing.npz"
    _write_arch(
        missing,
        {
            "format": "convext-model",
            "version": 1,
            "model": {"type": "Dense", "config": {"in_features": 2, "out_features": 3}},
        },
        weight=np.ones((3, 2), np.float32),
    )
    with pytest.raises(ValueError, match="missing keys.*bias"):
        cx.load(missing)

    shape = tmp_path / "shape.npz"
    _write_arch(
        shape,
        {
            "format": "convext-model",
            "version": 1,
            "model": {"type": "Dense", "config": {"in_features": 2, "out_features": 3}},
        },
        weight=np.ones((2, 2), np.float32),
        bias=np.ones(3, np.float32),
    )
    with pytest.raises(ValueError, match="'weight' has shape"):
        cx.load(shape)

    with pytest.raises(FileNotFoundError):
        cx.load(tmp_path / "nope.npz")
    assert zipfile.is_zipfile(good)


def test_unregistered_layer_cannot_be_saved(tmp_path):
    class Custom(L.ReLU):
        pass

    with pytest.raises(TypeError, match="cannot save a Custom"):
        L.Sequential(Custom()).save(tmp_path / "c.npz")
