"""The layers of issue 11 against their torch.nn counterparts: outputs and gradients (input and
parameters, through autograd), float64 tight and float32 within the forward tolerance;
BatchNorm2D in every mode torch has (eval-mode backward, momentum=None, affine off, no running
statistics) over several steps; Dropout2d's channel semantics."""

import numpy as np
import pytest

from convext import layers as L

torch = pytest.importorskip("torch")
nn = torch.nn

PAIRS = [
    (lambda: L.ReLU6(), lambda: nn.ReLU6()),
    (lambda: L.Hardtanh(-0.5, 2.0), lambda: nn.Hardtanh(-0.5, 2.0)),
    (lambda: L.SiLU(), lambda: nn.SiLU()),
    (lambda: L.Hardswish(), lambda: nn.Hardswish()),
    (lambda: L.Hardsigmoid(), lambda: nn.Hardsigmoid()),
    (lambda: L.GELU(), lambda: nn.GELU()),
    (lambda: L.GELU("tanh"), lambda: nn.GELU(approximate="tanh")),
    (lambda: L.AdaptiveAvgPool2D((3, 5)), lambda: nn.AdaptiveAvgPool2d((3, 5))),
    (lambda: L.AdaptiveAvgPool2D((None, 2)), lambda: nn.AdaptiveAvgPool2d((None, 2))),
    (lambda: L.AdaptiveMaxPool2D(4), lambda: nn.AdaptiveMaxPool2d(4)),
    (lambda: L.Upsample(scale_factor=2), lambda: nn.Upsample(scale_factor=2)),
    (lambda: L.Upsample(size=(5, 13)), lambda: nn.Upsample(size=(5, 13))),
    (
        lambda: L.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
        lambda: nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True),
    ),
    (
        lambda: L.Upsample(scale_factor=(1.5, 0.5), mode="bilinear"),
        lambda: nn.Upsample(scale_factor=(1.5, 0.5), mode="bilinear"),
    ),
    (lambda: L.Flatten(1, 2), lambda: nn.Flatten(1, 2)),
]


@pytest.mark.parametrize("ours, theirs", PAIRS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layer_matches_torch(ours, theirs, dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 3, 7, 9)) * 3).astype(dtype)
    g = rng.standard_normal(np.shape(ours()(x))).astype(dtype)
    layer = ours()
    y = layer(x)
    gx = layer.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    ty = theirs()(tx)
    ty.backward(torch.tensor(g))
    ref_y, ref_g = ty.detach().numpy(), tx.grad.numpy()
    assert y.dtype == dtype and gx.dtype == dtype and y.shape == ref_y.shape
    tol = 1e-12 if dtype == np.float64 else 1e-5
    checks = [(y, ref_y), (gx, ref_g)]
    if isinstance(layer, L.Hardsigmoid) and dtype == np.float64:
        # torch multiplies by the float32 constant 1.0f/6.0f even in float64 (3e-8 relative):
        # the exact gradient instead, and torch's within that
        np.testing.assert_allclose(gx, ref_g, rtol=1e-7)
        checks[1] = (gx, g / 6 * ((x > -3) & (x < 3)))
    for got, ref in checks:
        np.testing.assert_allclose(got, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(momentum=None),
        dict(affine=False),
        dict(track_running_stats=False),
        dict(momentum=0.3, eps=1e-3),
    ],
)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_batchnorm_matches_torch_over_steps(kw, dtype):
    """Three training steps then two eval-mode steps, each with backward: outputs, input and
    parameter gradients, running statistics and num_batches_tracked."""
    rng = np.random.default_rng(1)
    ours = L.BatchNorm2D(4, dtype=dtype, **kw)
    theirs = nn.BatchNorm2d(4, dtype=torch.float64 if dtype == np.float64 else torch.float32, **kw)
    if ours.affine:
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5)
            theirs.bias.uniform_(-0.5, 0.5)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for step in range(5):
        if step == 3:
            ours.eval()
            theirs.eval()
        x = (rng.standard_normal((3, 4, 5, 6)) * (step + 1) + step).astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        ours.zero_grad()
        theirs.zero_grad()
        tx = torch.tensor(x, requires_grad=True)
        ty = theirs(tx)
        ty.backward(torch.tensor(g))
        y, gx = ours(x), ours.backward(g)
        for got, ref in ((y, ty.detach().numpy()), (gx, tx.grad.numpy())):
            np.testing.assert_allclose(got, ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()))
        if ours.affine:
            for k, p in theirs.named_parameters():
                ref = p.grad.numpy()
                np.testing.assert_allclose(
                    ours.grads()[k], ref, rtol=0, atol=tol * max(1.0, np.abs(ref).max()), err_msg=k
                )
        sd = ours.state_dict()
        for k, v in theirs.state_dict().items():
            np.testing.assert_allclose(sd[k], v.numpy(), rtol=tol, atol=0, err_msg=k)


def test_dropout2d_channel_semantics_match_torch():
    """The same law as torch.nn.Dropout2d: whole channels zeroed, survivors scaled 1/(1-p);
    eval mode is the identity (the masks themselves come from different generators)."""
    x = np.ones((200, 16, 3, 3), np.float32)
    ours = L.Dropout2D(0.25, rng=0)(x)
    torch.manual_seed(0)
    theirs = nn.Dropout2d(0.25)(torch.tensor(x)).numpy()
    for y in (ours, theirs):
        per_channel = y.reshape(200, 16, 9)
        assert (per_channel == per_channel[..., :1]).all()  # a channel is kept or dropped whole
        assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
        assert abs((per_channel[..., 0] == 0).mean() - 0.25) < 0.02
    assert np.array_equal(
        L.Dropout2D(0.25).eval()(x), nn.Dropout2d(0.25).eval()(torch.tensor(x)).numpy()
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool_indices_and_unpool_match_torch(dtype):
    """MaxPool2D(return_indices=True) then MaxUnpool2D, against torch's pair: values, indices
    and the input gradient through both."""
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8)).astype(dtype)
    pool, unpool = L.MaxPool2D(3, 2, 1, return_indices=True), L.MaxUnpool2D(3, 2, 1)
    y, idx = pool(x)
    u = unpool(y, idx, output_size=x.shape[-2:])
    g = np.random.default_rng(4).standard_normal(u.shape).astype(dtype)
    gx = pool.backward(unpool.backward(g))
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = nn.MaxPool2d(3, 2, 1, return_indices=True)(tx)
    tu = nn.MaxUnpool2d(3, 2, 1)(ty, tidx, output_size=x.shape[-2:])
    tu.backward(torch.tensor(g))
    np.testing.assert_array_equal(idx, tidx.numpy())
    np.testing.assert_array_equal(u, tu.detach().numpy())
    np.testing.assert_array_equal(gx, tx.grad.numpy())
