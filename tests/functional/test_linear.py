"""functional.linear / linear_backward against float64 NumPy and finite differences (the PyTorch
comparison: tests/parity/test_parity_linear.py)."""

import numpy as np
import pytest

import convext
import reference as R
from convext import functional as F


@pytest.mark.parametrize(
    "xs, f",
    [((5, 7), 3), ((2, 3, 9), 4), ((130, 400), 120), ((3, 1300), 1000), ((7,), 2), ((0, 6), 3)],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_matches_float64_oracle(xs, f, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal((f, xs[-1])).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    gy = rng.standard_normal(xs[:-1] + (f,)).astype(dtype)
    x64, w64, gy64 = (a.astype(np.float64) for a in (x, w, gy))
    want = (
        np.einsum("...k,fk->...f", x64, w64) + b,
        np.einsum("...f,fk->...k", gy64, w64),
        np.einsum("mf,mk->fk", gy64.reshape(-1, f), x64.reshape(-1, xs[-1])),
        gy64.reshape(-1, f).sum(axis=0),
    )
    got = (F.linear(x, w, b),) + F.linear_backward(gy, x, w)
    for a, r in zip(got, want, strict=True):
        assert a.dtype == dtype and a.shape == r.shape
        if dtype == np.float64:
            np.testing.assert_allclose(a, r, rtol=1e-10, atol=1e-12)
        else:
            scale = max(1.0, float(np.abs(r).max(initial=0)))
            assert float(np.abs(a - r).max(initial=0)) <= 1e-5 * scale


def test_linear_gradients_by_central_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5))
    w = rng.standard_normal((4, 5))
    b = rng.standard_normal(4)
    gy = rng.standard_normal((3, 4))
    gx, gw, gb = F.linear_backward(gy, x, w)
    for got, num in (
        (gx, R.numerical_grad(lambda v: float(np.sum(F.linear(v, w, b) * gy)), x)),
        (gw, R.numerical_grad(lambda v: float(np.sum(F.linear(x, v, b) * gy)), w)),
        (gb, R.numerical_grad(lambda v: float(np.sum(F.linear(x, w, v) * gy)), b)),
    ):
        np.testing.assert_allclose(got, num, atol=1e-5, rtol=1e-3)


def test_linear_same_result_for_every_thread_count():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 400)).astype(np.float32)
    w = rng.standard_normal((120, 400)).astype(np.float32)
    gy = rng.standard_normal((300, 120)).astype(np.float32)
    old = convext.get_num_threads()
    try:
        runs = []
        for n in (1, 2, 3):
            convext.set_num_threads(n)
            runs.append((F.linear(x, w),) + F.linear_backward(gy, x, w))
    finally:
        convext.set_num_threads(old)
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_rows_do_not_depend_on_the_batch_or_threads(dtype):
    """Each row of the output (and of grad_x) is the same bit for bit whether its sample comes
    alone, in a batch of 70 or with 1-3 threads: the work is split into blocks of rows and of
    columns (1000 outputs cross several column blocks; K = 1300 crosses the GEMM's K chunks)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((70, 1300)).astype(dtype)
    w = rng.standard_normal((1000, 1300)).astype(dtype)
    b = rng.standard_normal(1000).astype(dtype)
    gy = rng.standard_normal((70, 1000)).astype(dtype)
    old = convext.get_num_threads()
    try:
        for n in (1, 2, 3):
            convext.set_num_threads(n)
            y = F.linear(x, w, b)
            gx = F.linear_backward(gy, x, w, True, False, False)[0]
            for i in (0, 1, 64, 69):
                np.testing.assert_array_equal(F.linear(x[i : i + 1], w, b)[0], y[i])
                one = F.linear_backward(gy[i : i + 1], x[i : i + 1], w, True, False, False)[0]
                np.testing.assert_array_equal(one[0], gx[i])
            if n == 1:
                first = (y, gx)
            else:
                np.testing.assert_array_equal(y, first[0])
                np.testing.assert_array_equal(gx, first[1])
    finally:
        convext.set_num_threads(old)


def test_a_single_row_reads_its_weight_on_every_thread():
    """On a row or two the time is the weight's read, not the multiply-adds: resnet's
    classifier at batch 1 (512 -> 1000, 0.5 M multiply-adds, under the convolutions' threshold)
    runs on every thread, a small layer on one; the outputs are the same bits either way."""
    from convext.functional.linear import _linear_threads

    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 512)).astype(np.float32)
    w = rng.standard_normal((1000, 512)).astype(np.float32)
    b = rng.standard_normal(1000).astype(np.float32)
    old = convext.get_num_threads()
    try:
        convext.set_num_threads(2)
        # get_num_threads(): 2, or 1 in a build without OpenMP
        assert _linear_threads(1, 1000, 512) == convext.get_num_threads()
        assert _linear_threads(1, 10, 84) == 1  # lenet's last layer
        two = F.linear(x, w, b)
        convext.set_num_threads(1)
        np.testing.assert_array_equal(F.linear(x, w, b), two)
    finally:
        convext.set_num_threads(old)


def test_linear_with_no_input_or_no_output_features():
    """In torch's terms: no input features gives the bias (zeros without one); no output
    features gives empty rows; the gradients keep their shapes (they raised numpy's "cannot
    reshape array of size 0")."""
    x = np.zeros((3, 0), np.float32)
    b = np.arange(4, dtype=np.float32)
    np.testing.assert_array_equal(F.linear(x, np.zeros((4, 0), np.float32), b), np.tile(b, (3, 1)))
    np.testing.assert_array_equal(
        F.linear(x, np.zeros((4, 0), np.float32)), np.zeros((3, 4), np.float32)
    )
    assert F.linear(np.ones((3, 5), np.float32), np.zeros((0, 5), np.float32)).shape == (3, 0)
    gx, gw, gb = F.linear_backward(
        np.zeros((3, 0), np.float32), np.ones((3, 5), np.float32), np.zeros((0, 5), np.float32)
    )
    np.testing.assert_array_equal(gx, np.zeros((3, 5), np.float32))
    assert gw.shape == (0, 5) and gb.shape == (0,)
    gx, gw, gb = F.linear_backward(np.ones((3, 4), np.float32), x, np.zeros((4, 0), np.float32))
    assert gx.shape == (3, 0) and gw.shape == (4, 0)
    np.testing.assert_array_equal(gb, np.full(4, 3, np.float32))


@pytest.mark.parametrize("flag", ["needs_input_grad", "needs_weight_grad", "needs_bias_grad"])
@pytest.mark.parametrize(
    "call", ["linear_backward", "conv2d_backward", "conv_transpose2d_backward"]
)
def test_backward_flags_must_be_bools(call, flag):
    """A string flag ("no") read as True: a TypeError naming it."""
    x = np.ones((1, 2, 4, 4), np.float32)
    if call == "linear_backward":
        args = (
            np.ones((3, 4), np.float32),
            np.ones((3, 5), np.float32),
            np.ones((4, 5), np.float32),
        )
    elif call == "conv2d_backward":
        args = (np.ones((1, 3, 2, 2), np.float32), x, np.ones((3, 2, 3, 3), np.float32))
    else:
        args = (np.ones((1, 3, 6, 6), np.float32), x, np.ones((2, 3, 3, 3), np.float32))
    getattr(F, call)(*args)  # the arguments themselves are valid
    with pytest.raises(TypeError, match=rf"^{flag} must be a bool, got str 'no'"):
        getattr(F, call)(*args, **{flag: "no"})
