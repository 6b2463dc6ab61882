"""optimize_for_inference of an imported ONNX model (torch's ResNet-18 layout exported with
torch.onnx.export) against torch in eval mode and against the unoptimized import."""

import io
import warnings

import numpy as np
import pytest

import convext

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
import convext.onnx  # noqa: E402
from convext.bench import _torch_zoo  # noqa: E402


def _torch_model(name):
    torch.manual_seed(0)
    tm = getattr(_torch_zoo, name)(torch, num_classes=10)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in tm.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                C = m.num_features
                m.running_mean.copy_(torch.randn(C, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(C, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(C, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(C, generator=gen) * 0.2)
    return tm.eval()


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_imported_onnx_graph(name):
    tm = _torch_model(name)
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            tm,
            torch.zeros((1, 3, 32, 32)),
            f,
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.PRESERVE,
        )
    graph = convext.onnx.load(f.getvalue())
    opt = convext.optimize_for_inference(graph)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        ref = tm.double()(torch.from_numpy(x.astype(np.float64))).numpy()
    scale = np.abs(ref).max()
    plain = graph(x)
    got = opt(x)
    assert got.dtype == np.float32 and got.shape == ref.shape
    err_plain = np.abs(plain - ref).max() / scale
    err = np.abs(got - ref).max() / scale
    assert err <= max(1e-5, 2 * err_plain), (err, err_plain)
    np.testing.assert_array_equal(opt(x[1:2]), got[1:2])
    (plan,) = [  # the batch-3 plan
        entry
        for (signature, _threads), entry in opt._local.plans.items()
        if signature[0][0][0] == 3
    ]
    assert len(plan.steps) < len(opt._nodes)  # something was fused
    assert not any(type(fn).__name__ == "BatchNorm2D" for fn, _, _ in plan.steps)
    # torch's ReLU6 exports as Clip(0, 6): computed in the convolutions' epilogue as well
    assert not any(type(fn).__name__ == "OnnxClip" for fn, _, _ in plan.steps)
    # every node computes each image alone (Flatten with axis 1), so a large batch may run in
    # chunks: forced here, the same bits as one run
    assert opt._per_sample
    chunked = convext.optimize_for_inference(graph)
    chunked._weight_bytes = 0
    before = convext.inference.CHUNK_BYTES
    convext.inference.CHUNK_BYTES = 1
    copies = convext.get_num_threads()  # more images than threads
    try:
        np.testing.assert_array_equal(
            chunked(np.concatenate([x] * copies)), np.concatenate([got] * copies)
        )
        assert isinstance(chunked._entry([np.concatenate([x] * copies)]), int)
    finally:
        convext.inference.CHUNK_BYTES = before
