"""Graph models (convext.layers.graph): the builder, DAG semantics (several inputs, a tensor
consumed twice, outputs in the middle, nodes given out of order), gradients against finite
differences, state_dict keys, train/eval, save/load, and hostile graph descriptions in model
files. No torch here."""

import io
import json
import os
import re
import zipfile

import numpy as np
import pytest

import convext as cx
from convext import layers as L
from convext.layers import registry
from reference import numerical_grad

RNG = np.random.default_rng(1234)


def resnet_block(c=3, dtype="float64"):
    g = L.GraphBuilder()
    x = g.input("x")
    y = g.add_node("conv1", L.Conv2D(c, c, 3, padding=1, bias=False, dtype=dtype), x)
    y = g.add_node("bn1", L.BatchNorm2D(c, dtype=dtype), y)
    y = g.add_node("relu1", L.ReLU(), y)
    y = g.add_node("conv2", L.Conv2D(c, c, 3, padding=1, bias=False, dtype=dtype), y)
    y = g.add_node("bn2", L.BatchNorm2D(c, dtype=dtype), y)
    y = g.add_node("add", L.Add(), y, x)
    g.output(g.add_node("relu2", L.ReLU(), y))
    return g.build()


def diamond(dtype="float64"):
    """x feeds conv_a, conv_b and the mul; a constant per-channel scale; concat of three."""
    g = L.GraphBuilder()
    x = g.input("x")
    a = g.add_node("conv_a", L.Conv2D(2, 3, 3, padding=1, dtype=dtype), x)
    b = g.add_node("conv_b", L.Conv2D(2, 3, 1, dtype=dtype), x)
    s = g.add_node(
        "scale", L.Constant([3, 1, 1], dtype, value=np.array([1.5, -0.5, 2.0]).reshape(3, 1, 1))
    )
    m = g.add_node("mul", L.Mul(), a, b)
    d = g.add_node("div", L.Div(), m, g.add_node("off", L.Add(), s, s))
    e = g.add_node("sub", L.Sub(), a, d)
    t = g.add_node("tanh", L.Tanh(), e)
    c = g.add_node("cat", L.Cat(axis=1), t, a, x)
    p = g.add_node("pad", L.Pad([1, 0, 2, 1], mode="reflect"), c)
    r = g.add_node("flat", L.Reshape([0, -1]), p)
    g.output(g.add_node("fc", L.Dense(8 * 4 * 7, 4, dtype=dtype), r))
    return g.build()


def _loss_and_grads(model, x, w):
    """sum(w * model(x)) and its gradients (input, parameters) by model.backward."""
    model.zero_grad()
    y = model(x)
    gx = model.backward(w)
    return float((w * y).sum()), gx, {k: v.copy() for k, v in model.grads().items()}


@pytest.mark.parametrize("make", [resnet_block, diamond])
def test_gradients_match_finite_differences(make):
    model = make()  # training mode: BatchNorm normalises with the batch statistics
    x = RNG.standard_normal((2, 3, 4, 4) if make is resnet_block else (2, 2, 3, 4))
    y = model(x)
    w = RNG.standard_normal(y.shape)
    _, gx, grads = _loss_and_grads(model, x, w)

    def f(xv):
        return float((w * model(xv)).sum())

    np.testing.assert_allclose(gx, numerical_grad(f, x), rtol=1e-6, atol=1e-7)
    for name, p in model.parameters().items():

        def fp(pv, p=p):
            old = p.copy()
            p[...] = pv
            try:
                return float((w * model(x)).sum())
            finally:
                p[...] = old

        np.testing.assert_allclose(
            grads[name], numerical_grad(fp, p), rtol=1e-6, atol=1e-7, err_msg=name
        )


def test_tensor_used_twice_by_one_node_and_unused_nodes():
    g = L.GraphBuilder()
    x = g.input("x")
    sq = g.add_node("sq", L.Mul(), x, x)
    g.add_node("dead", L.Tanh(), x)  # reaches no output: run, but never back-propagated
    g.output(sq)
    m = g.build()
    x = RNG.standard_normal((3, 4))
    np.testing.assert_array_equal(m(x), x * x)
    np.testing.assert_allclose(m.backward(np.ones((3, 4))), 2 * x, rtol=1e-15)


def test_several_inputs_and_outputs_and_out_of_order_nodes():
    nodes = [("s", L.Add(), ["p", "b"]), ("p", L.Mul(), ["a", "b"])]  # s listed before p
    m = L.Graph(["a", "b"], nodes, ["s", "p"])
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    s, p = m(a, b)
    np.testing.assert_array_equal(p, a * b)
    np.testing.assert_array_equal(s, a * b + b)
    gs, gp = RNG.standard_normal((2, 3)), RNG.standard_normal((2, 3))
    ga, gb = m.backward((gs, gp))
    np.testing.assert_allclose(ga, (gs + gp) * b)
    np.testing.assert_allclose(gb, (gs + gp) * a + gs)
    # an input that reaches no output gets a zero gradient
    m2 = L.Graph(["a", "b"], [("t", L.Tanh(), ["a"])], ["t"])
    m2(a, b)
    np.testing.assert_array_equal(m2.backward(np.ones((2, 3)))[1], np.zeros((2, 3)))


def test_broadcasting_per_channel_gradient():
    m = L.Graph(["x", "c"], [("y", L.Mul(), ["x", "c"])], ["y"])
    x, c = RNG.standard_normal((2, 3, 4, 5)), RNG.standard_normal((3, 1, 1))
    m(x, c)
    g = RNG.standard_normal((2, 3, 4, 5))
    gx, gc = m.backward(g)
    np.testing.assert_allclose(gc, (g * x).sum(axis=(0, 2, 3)).reshape(3, 1, 1))
    np.testing.assert_allclose(gx, g * c)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_matches_numpy_and_its_adjoint(mode):
    pad = L.Pad([2, 1, 0, 3], mode=mode, value=0.5)
    x = RNG.standard_normal((2, 3, 4, 5))
    y = pad(x)
    kw = {"constant_values": 0.5} if mode == "constant" else {}
    np.testing.assert_array_equal(y, np.pad(x, [(0, 0), (0, 0), (2, 1), (0, 3)], mode=mode, **kw))
    g = RNG.standard_normal(y.shape)
    gx = pad.backward(g)
    # the adjoint: <pad(x), g> = <x, pad^T(g)> for every x; here the gradient of a linear map
    x2 = RNG.standard_normal(x.shape)
    base = pad(np.zeros_like(x)) if mode == "constant" else 0
    assert np.isclose(((pad(x2) - base) * g).sum(), (x2 * gx).sum(), rtol=1e-12)


def test_transpose_and_reshape():
    m = L.Graph(
        ["x"], [("t", L.Transpose([0, 2, 3, 1]), ["x"]), ("r", L.Reshape([0, 4, -1]), ["t"])], ["r"]
    )
    x = RNG.standard_normal((2, 3, 4, 5))
    y = m(x)
    np.testing.assert_array_equal(y, x.transpose(0, 2, 3, 1).reshape(2, 4, -1))
    g = RNG.standard_normal(y.shape)
    np.testing.assert_array_equal(m.backward(g), g.reshape(2, 4, 5, 3).transpose(0, 3, 1, 2))


def test_is_a_layer_state_dict_train_eval_repr():
    m = resnet_block(4, "float32")
    assert list(m.state_dict()) == [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "conv2.weight",
        "bn2.weight",
        "bn2.bias",
        "bn2.running_mean",
        "bn2.running_var",
        "bn2.num_batches_tracked",
    ]
    assert list(m.parameters()) == list(m.grads())
    m.eval()
    assert all(not layer.training for _, layer in m.named_layers())
    m.train()
    assert all(layer.training for _, layer in m.named_layers())
    text = repr(m)
    assert "(add): Add() <- relu1, x" not in text and "(add): Add() <- bn2, x" in text
    x = RNG.standard_normal((2, 4, 5, 5)).astype(np.float32)
    m.eval()
    m2 = resnet_block(4, "float32").load_state_dict(m.state_dict()).eval()
    np.testing.assert_array_equal(m(x), m2(x))


def test_eval_forward_keeps_nothing_and_backward_needs_training_forward():
    m = resnet_block().eval()
    m(RNG.standard_normal((1, 3, 4, 4)))
    with pytest.raises(RuntimeError, match="training mode"):
        m.backward(np.ones((1, 3, 4, 4)))


def test_save_load_roundtrip(tmp_path):
    m = diamond("float32")
    x = RNG.standard_normal((2, 2, 3, 4)).astype(np.float32)
    m.eval()
    path = tmp_path / "g.npz"
    m.save(path)
    m2 = cx.load(path)
    assert isinstance(m2, L.Graph) and m2.get_config()["wiring"] == m.get_config()["wiring"]
    np.testing.assert_array_equal(m2.eval()(x), m(x))
    np.testing.assert_array_equal(m2.node("scale").value, m.node("scale").value)
    # a graph inside a Sequential, and a graph inside a graph
    outer = L.Graph(["x"], [("inner", resnet_block(), ["x"]), ("r", L.ReLU(), ["inner"])], ["r"])
    seq = L.Sequential(outer, L.Flatten())
    seq.save(tmp_path / "s.npz")
    assert list(cx.load(tmp_path / "s.npz").state_dict()) == list(seq.state_dict())


@pytest.mark.parametrize(
    "bad, match",
    [
        (lambda: L.Graph(["x"], [("a", L.ReLU(), ["y"])], ["a"]), "unknown tensor 'y'"),
        (lambda: L.Graph(["x"], [("a", L.ReLU(), ["b"]), ("b", L.ReLU(), ["a"])], ["a"]), "cycle"),
        (lambda: L.Graph(["x"], [("a", L.ReLU(), ["a"])], ["a"]), "cycle"),
        (lambda: L.Graph(["x"], [("x", L.ReLU(), ["x"])], ["x"]), "duplicate name 'x'"),
        (
            lambda: L.Graph(["x"], [("a", L.ReLU(), ["x"]), ("a", L.Tanh(), ["x"])], ["a"]),
            "duplicate name 'a'",
        ),
        (lambda: L.Graph(["x"], [("a.b", L.ReLU(), ["x"])], ["a.b"]), "letters, digits"),
        (lambda: L.Graph(["x"], [("a", L.ReLU(), ["x"])], ["z"]), "output 'z'"),
        (lambda: L.Graph(["x"], [("a", L.Add(), ["x"])], ["a"]), "takes 2 input"),
        (lambda: L.Graph(["x"], [("a", L.ReLU(), ["x", "x"])], ["a"]), "takes 1 input"),
        (lambda: L.Graph([], [], ["x"]), "input_names"),
        (lambda: L.Reshape([-1, -1]), "more than one -1"),
        (lambda: L.Transpose([0, 0]), "not a permutation"),
        (lambda: L.Pad([1, 2, 3]), "even length"),
        (lambda: L.Pad([1, 1], mode="wrap"), "mode"),
    ],
)
def test_invalid_graphs_are_value_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_builder_errors():
    g = L.GraphBuilder()
    x = g.input("x")
    with pytest.raises(ValueError, match="taken"):
        g.add_node("x", L.ReLU(), x)
    with pytest.raises(ValueError, match="unknown input 'nope'"):
        g.add_node("r", L.ReLU(), "nope")
    with pytest.raises(TypeError, match="not a Layer"):
        g.add_node("r", np.zeros(3), x)
    with pytest.raises(ValueError, match="unknown tensor"):
        g.output("nope")
    relu = L.ReLU()
    g.add_node("r1", relu, x)
    g.add_node("r2", relu, "r1")
    g.output("r2")
    with pytest.raises(ValueError, match="only once in a model"):
        g.build()


def test_runtime_errors_name_the_node():
    m = L.Graph(["a", "b"], [("s", L.Add(), ["a", "b"])], ["s"])
    with pytest.raises(ValueError, match="node 's'.*do not broadcast"):
        m(np.zeros((2, 3)), np.zeros((4, 3)))
    with pytest.raises(TypeError, match="node 's'.*dtypes"):
        m(np.zeros((2, 3)), np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="expected 2 input"):
        m(np.zeros(3))


# -- hostile model files -------------------------------------------------------------------
def _rewrite(path, edit):
    """Rewrite the architecture JSON of a saved model with ``edit(meta)``."""
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    key = next(n for n in members if n.startswith("__convext_model__"))
    arr = np.load(io.BytesIO(members[key]))
    meta = json.loads(str(arr))
    edit(meta)
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    members[key] = buf.getvalue()
    out = path.with_name("edited.npz")
    with zipfile.ZipFile(out, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)
    return out


def _wiring(meta):
    return meta["model"]["config"]["wiring"]


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: _wiring(m)[0][1].__setitem__(0, "ghost"), "unknown tensor 'ghost'"),
        (lambda m: _wiring(m)[0][1].__setitem__(0, "relu2"), "cycle"),
        (lambda m: _wiring(m)[1].__setitem__(0, "conv1"), "conv1"),
        (lambda m: _wiring(m).pop(), "same length"),
        (lambda m: m["model"]["config"].__setitem__("output_names", ["nowhere"]), "nowhere"),
        (lambda m: m["model"]["config"].__setitem__("output_names", []), "output_names"),
        (lambda m: _wiring(m)[0].__setitem__(0, 7), "wiring"),
        (lambda m: _wiring(m)[0].__setitem__(0, "a" * 1000), "wiring"),
        (lambda m: _wiring(m)[0][1].extend(["x"] * 5000), "wiring"),
        (lambda m: m["model"]["config"].__setitem__("wiring", {"a": 1}), "wiring"),
        (lambda m: _wiring(m)[5][1].append("x"), "takes 2 input"),
        (
            lambda m: m["model"]["config"]["nodes"][5].__setitem__("type", "Os.System"),
            "unknown layer type",
        ),
        (lambda m: m["model"]["config"].__setitem__("extra", 1), "unknown field"),
    ],
)
def test_hostile_graph_files_are_value_errors(tmp_path, edit, match):
    m = resnet_block()
    path = tmp_path / "g.npz"
    m.save(path)
    bad = _rewrite(path, edit)
    with pytest.raises(ValueError, match=match):
        cx.load(bad)


def test_hostile_deeply_nested_graphs_are_refused(tmp_path):
    m = resnet_block()
    path = tmp_path / "g.npz"
    m.save(path)

    def nest(meta):
        spec = meta["model"]
        for _ in range(registry.MAX_NESTING + 2):
            spec = {
                "type": "Graph",
                "config": {
                    "input_names": ["x"],
                    "output_names": ["n"],
                    "nodes": [spec],
                    "wiring": [["n", ["x"]]],
                },
            }
        meta["model"] = spec

    with pytest.raises(ValueError, match="nest"):
        cx.load(_rewrite(path, nest))


def test_graph_of_many_nodes_roundtrips(tmp_path):
    nodes = [(f"r{i}", L.ReLU(), [f"r{i - 1}" if i else "x"]) for i in range(2000)]
    m = L.Graph(["x"], nodes, ["r1999"])
    m.save(tmp_path / "long.npz")
    m2 = cx.load(tmp_path / "long.npz")
    x = RNG.standard_normal((2, 3))
    np.testing.assert_array_equal(m2(x), np.maximum(x, 0))


# -- README examples -----------------------------------------------------------------------
def _readme_blocks(section):
    readme = os.path.join(os.path.dirname(__file__), "..", "..", "README.md")
    if not os.path.exists(readme):
        pytest.skip("README.md is not next to the tests (installed-wheel run)")
    text = open(readme, encoding="utf-8").read()
    start = text.index(section)
    end = text.find("\n#", start + len(section))
    body = text[start : end if end >= 0 else None]
    return re.findall(r"```python\n(.*?)```", body, re.S)


def test_readme_graph_examples(tmp_path, monkeypatch):
    blocks = _readme_blocks("### Graph models")
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)
    ns = {}
    for code in blocks:
        exec(compile(code, "README.md", "exec"), ns)


def test_wiring_check_is_linear_for_hostile_orders():
    import time

    n = 20000  # a chain listed last node first: a quadratic check would take minutes
    nodes = [(f"r{i}", L.Identity(), [f"r{i - 1}" if i else "x"]) for i in range(n)][::-1]
    t0 = time.perf_counter()
    m = L.Graph(["x"], nodes, [f"r{n - 1}"])
    assert time.perf_counter() - t0 < 5
    assert m._order[:2] == ["r0", "r1"]
    cyc = nodes + [("r0_again", L.Identity(), [f"r{n - 1}"])]
    cyc[-2] = ("r0", L.Identity(), ["r0_again"])  # r0 now depends on the end of the chain
    with pytest.raises(ValueError, match="cycle"):
        L.Graph(["x"], cyc, ["r5"])


def test_graph_as_a_node_of_a_graph():
    inner = L.Graph(["a", "b"], [("m", L.Mul(), ["a", "b"])], ["m"])
    outer = L.Graph(["x"], [("t", L.Tanh(), ["x"]), ("inner", inner, ["x", "t"])], ["inner"])
    x = RNG.standard_normal((2, 3))
    np.testing.assert_allclose(outer(x), x * np.tanh(x))
    g = outer.backward(np.ones((2, 3)))
    np.testing.assert_allclose(g, np.tanh(x) + x * (1 - np.tanh(x) ** 2), rtol=1e-12)


def test_a_node_returning_several_outputs_cannot_feed_other_nodes():
    """numpy stacked the tuple of a two-output node into one array for its consumer: shapes
    (2, 2, 3) from a (2, 3) input, silently."""
    inner = cx.layers.GraphBuilder()
    x = inner.input("x")
    inner.add_node("r1", L.ReLU(), x)
    inner.add_node("r2", L.ReLU(), x)
    inner.output("r1", "r2")
    outer = cx.layers.GraphBuilder()
    x = outer.input("x")
    g = outer.add_node("g", inner.build(), x)
    outer.add_node("r", L.ReLU(), g)
    outer.output("r")
    graph = outer.build()
    with pytest.raises(ValueError, match="node 'g' .* returns 2 outputs"):
        graph(np.ones((2, 3), np.float32))


def test_run_keep_must_name_nodes():
    graph = cx.layers.Graph(["x"], [("r", L.ReLU(), ["x"])], ["r"])
    x = np.ones((1, 2), np.float32)
    assert set(graph.run(x, keep=["x"])) == {"r", "x"}
    for keep in (["nope"], "rx", None):
        with pytest.raises(ValueError, match="keep must be a list of node or input names"):
            graph.run(x, keep=keep)


def test_broadcasting_ops_refuse_results_larger_than_the_machine():
    a, b = np.ones((1, 200_000), np.float32), np.ones((200_000, 1), np.float32)
    with pytest.raises(ValueError, match=r"^Add: the broadcast result .* bytes, more than"):
        L.Add()(a, b)


def test_cat_without_inputs_is_a_type_error():
    """``Cat()()`` indexed its first input (IndexError); it names the missing inputs, as the
    two-input ops' missing ``a`` and ``b`` do, and a Graph node without inputs is refused."""
    with pytest.raises(TypeError, match="^Cat: xs must hold at least one input"):
        L.Cat()()
    with pytest.raises(TypeError, match="missing 2 required positional arguments: 'a' and 'b'"):
        L.Add()()
    g = L.GraphBuilder()
    g.input("x")
    g.output(g.add_node("cat", L.Cat()))
    with pytest.raises(ValueError, match=r"node 'cat' \(Cat\) takes at least 1 input"):
        g.build()
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(L.Cat(axis=0)(x), x)  # one input: itself


def test_a_constant_output_cannot_change_the_model(tmp_path):
    """A graph output that is a Constant's value, or a view of it through Reshape, is
    read-only: `out += 10` changed the model's buffer (and what save wrote)."""
    g = L.GraphBuilder()
    g.input("x")
    k = g.add_node("k", L.Constant([2], value=np.array([1.0, 2.0], np.float32)))
    r = g.add_node("r", L.Reshape([2, 1]), k)
    g.output(k, r)
    model = g.build()
    for out in model(np.zeros(1, np.float32)):
        with pytest.raises(ValueError, match="read-only"):
            out += 10
    np.testing.assert_array_equal(model.node("k").value, [1.0, 2.0])
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(cx.load(tmp_path / "m.npz").node("k").value, [1.0, 2.0])
