"""torch's own OpInfo samples (torch.testing._internal.common_methods_invocations.op_db) and
ModuleInfo samples (common_modules.module_db) for the losses, batch_norm, avg_pool2d and
BatchNorm2d, run through convext: forward and gradient compared with torch autograd.

A sample convext refuses (ValueError/TypeError) while torch computes it counts as *refused*; the
only ones allowed are listed in OUT_OF_SCOPE with the reason. ``python
tests/parity/test_parity_opinfo_losses.py`` prints the counts (run it with the main branch's
convext on PYTHONPATH to count the refusals before a change).
"""

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
# torch's testing internals import expecttest
pytest.importorskip("expecttest")
from torch.testing._internal.common_methods_invocations import op_db  # noqa: E402

import convext.functional as F  # noqa: E402
from convext.layers import BatchNorm2D  # noqa: E402

# torch's positional parameters after the input, per op
SIGNATURES = {
    "nn.functional.cross_entropy": (
        "target",
        "weight",
        "size_average",
        "ignore_index",
        "reduce",
        "reduction",
        "label_smoothing",
    ),
    "nn.functional.nll_loss": (
        "target",
        "weight",
        "size_average",
        "ignore_index",
        "reduce",
        "reduction",
    ),
    "nn.functional.binary_cross_entropy": (
        "target",
        "weight",
        "size_average",
        "reduce",
        "reduction",
    ),
    "nn.functional.binary_cross_entropy_with_logits": (
        "target",
        "weight",
        "size_average",
        "reduce",
        "reduction",
        "pos_weight",
    ),
    "nn.functional.batch_norm": (
        "running_mean",
        "running_var",
        "weight",
        "bias",
        "training",
        "momentum",
        "eps",
    ),
    "nn.functional.avg_pool2d": (
        "kernel_size",
        "stride",
        "padding",
        "ceil_mode",
        "count_include_pad",
        "divisor_override",
    ),
}

# samples convext refuses on purpose: (op name, predicate on the named arguments, reason)
OUT_OF_SCOPE = [
    (
        "nn.functional.batch_norm",
        lambda x, kw: x.ndim == 1,
        "1-D input (0,): no channel axis; convext's batch_norm takes (N, C, *spatial) (torch "
        "itself refuses every non-empty 1-D input: 'running_mean should contain 0 elements')",
    ),
]

DTYPES = (np.float32, np.float64)
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _np(v):
    if torch.is_tensor(v):
        return v.detach().numpy().copy()
    return v


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)


def _named(name, sample):
    kw = dict(zip(SIGNATURES[name], sample.args, strict=False))
    kw.update(sample.kwargs)
    return kw


def _run_loss(name, x, kw):
    fn = {
        "nn.functional.cross_entropy": F.cross_entropy,
        "nn.functional.nll_loss": F.nll_loss,
        "nn.functional.binary_cross_entropy": F.binary_cross_entropy,
        "nn.functional.binary_cross_entropy_with_logits": F.binary_cross_entropy_with_logits,
    }[name]
    kw = {k: _np(v) for k, v in kw.items()}
    if kw.pop("size_average", None) is not None or kw.pop("reduce", None) is not None:
        raise AssertionError("deprecated size_average/reduce in a sample")
    target = kw.pop("target")
    if name == "nn.functional.binary_cross_entropy":
        return fn(x, target, kw.pop("weight", None), **kw)
    return fn(x, target, **kw)


def _torch_call(op, sample):
    inp = sample.input.detach().clone().requires_grad_(True)
    args = [a.detach().clone() if torch.is_tensor(a) else a for a in sample.args]
    kwargs = {
        k: (v.detach().clone() if torch.is_tensor(v) else v) for k, v in sample.kwargs.items()
    }
    out = op.op(inp, *args, **kwargs)
    out.sum().backward()
    return out.detach().numpy(), inp.grad.numpy(), args, kwargs


def _check_sample(name, op, sample, dtype):
    """'ok' after comparing, 'refused' (with the message) or 'both' when torch refuses too."""
    x = sample.input.detach().numpy().copy()
    kw = _named(name, sample)
    try:
        t_out, t_grad, t_args, t_kwargs = _torch_call(op, sample)
    except Exception:
        t_out = None
    try:
        if name == "nn.functional.avg_pool2d":
            kw = {k: v for k, v in kw.items()}
            out = F.avg_pool2d(x, **kw)
            grad = F.avg_pool2d_backward(np.ones_like(out), x.shape, **kw)
        elif name == "nn.functional.batch_norm":
            kw = {k: _np(v) for k, v in kw.items()}
            rm, rv = kw.pop("running_mean"), kw.pop("running_var")
            out, mean, invstd = F.batch_norm(x, rm, rv, return_stats=True, **kw)
            grad, gw, gb = F.batch_norm_backward(
                np.ones_like(out),
                x,
                mean,
                invstd,
                kw.get("weight"),
                training=kw.get("training", False),
            )
        else:
            out, grad = _run_loss(name, x, kw)
    except (ValueError, TypeError) as e:
        if t_out is None:
            return "both", None
        return "refused", f"{type(e).__name__}: {e}"
    assert t_out is not None, f"{name}: convext computed a sample torch refuses: {kw}"
    tol = _tol(dtype)
    np.testing.assert_allclose(np.asarray(out), t_out, **tol, err_msg=f"{name} forward {kw}")
    np.testing.assert_allclose(grad, t_grad, **tol, err_msg=f"{name} grad {kw}")
    if name == "nn.functional.batch_norm":
        names = SIGNATURES[name]
        targs = dict(zip(names, t_args, strict=False))
        targs.update(t_kwargs)
        for k, ours in (("running_mean", rm), ("running_var", rv)):
            if ours is not None:
                np.testing.assert_allclose(ours, targs[k].numpy(), **tol, err_msg=k)
    return "ok", None


def _out_of_scope(name, sample):
    for op_name, pred, reason in OUT_OF_SCOPE:
        if op_name == name and pred(sample.input, sample.kwargs):
            return reason
    return None


def run_samples(strict=True):
    """(counts, refused): counts[name] = {'ok': n, 'refused': n, 'both': n}; refused lists
    (name, dtype, sample description, message, out-of-scope reason or None). ``strict=False``
    (the script's count) records any other failure as 'refused' too instead of raising."""
    counts, refused = {}, []
    for op in op_db:
        if op.name not in SIGNATURES:
            continue
        key = op.name + (f".{op.variant_test_name}" if op.variant_test_name else "")
        for dtype in DTYPES:
            for sample in op.sample_inputs("cpu", TORCH_DTYPE[dtype], requires_grad=True):
                try:
                    status, msg = _check_sample(op.name, op, sample, dtype)
                except Exception as e:
                    if strict:
                        raise
                    status, msg = "refused", f"{type(e).__name__}: {str(e)[:200]}"
                c = counts.setdefault(key, {"ok": 0, "refused": 0, "both": 0})
                c[status] += 1
                if status == "refused":
                    desc = (
                        tuple(sample.input.shape),
                        [tuple(a.shape) if torch.is_tensor(a) else a for a in sample.args],
                        {
                            k: tuple(v.shape) if torch.is_tensor(v) else v
                            for k, v in sample.kwargs.items()
                        },
                    )
                    refused.append((key, dtype.__name__, desc, msg, _out_of_scope(op.name, sample)))
    for dtype in DTYPES:
        for status, msg, desc in _module_samples(dtype, strict):
            c = counts.setdefault("BatchNorm2d (ModuleInfo)", {"ok": 0, "refused": 0, "both": 0})
            c[status] += 1
            if status == "refused":
                refused.append(("BatchNorm2d", dtype.__name__, desc, msg, None))
    return counts, refused


def _module_samples(dtype, strict=True):
    """torch's ModuleInfo samples of nn.BatchNorm2d, in training and eval mode, through
    BatchNorm2D: output, input gradient, parameter gradients and running buffers."""
    try:
        from torch.testing._internal.common_modules import module_db
    except ImportError:  # pragma: no cover - older torch
        return
    infos = [m for m in module_db if m.module_cls is torch.nn.BatchNorm2d]
    for info in infos:
        for training in (True, False):
            for mi in info.module_inputs_func(
                info, device="cpu", dtype=TORCH_DTYPE[dtype], requires_grad=True, training=training
            ):
                ci, fi = mi.constructor_input, mi.forward_input
                desc = (ci.args, ci.kwargs, [tuple(a.shape) for a in fi.args], training)
                tm = info.module_cls(*ci.args, **ci.kwargs, dtype=TORCH_DTYPE[dtype])
                tm.train(training)
                xt = fi.args[0].detach().clone().requires_grad_(True)
                yt = tm(xt)
                yt.sum().backward()
                try:
                    m = BatchNorm2D(*ci.args, **ci.kwargs, dtype=dtype)
                    m.train(training)
                    x = fi.args[0].detach().numpy().copy()
                    y = m.forward(x)
                    gx = m.backward(np.ones_like(y))
                except Exception as e:
                    if strict and not isinstance(e, (ValueError, TypeError)):
                        raise
                    yield "refused", f"{type(e).__name__}: {e}", desc
                    continue
                tol = _tol(dtype)
                np.testing.assert_allclose(y, yt.detach().numpy(), **tol, err_msg=str(desc))
                np.testing.assert_allclose(gx, xt.grad.numpy(), **tol, err_msg=str(desc))
                sd = m.state_dict()
                for k, v in tm.state_dict().items():
                    np.testing.assert_allclose(sd[k], v.numpy(), **tol, err_msg=f"{k} {desc}")
                assert set(sd) == set(tm.state_dict()), desc
                for k, p in tm.named_parameters():
                    np.testing.assert_allclose(
                        m._grads[k], p.grad.numpy(), **tol, err_msg=f"grad {k} {desc}"
                    )
                yield "ok", None, desc


def test_opinfo_samples_not_refused():
    counts, refused = run_samples()
    assert sum(c["ok"] for c in counts.values()) > 200  # the samples did run
    unexpected = [r for r in refused if r[4] is None]
    assert not unexpected, "\n".join(map(str, unexpected))


if __name__ == "__main__":
    counts, refused = run_samples(strict=False)
    for k, c in counts.items():
        print(f"{k:50s} ok {c['ok']:3d}  refused {c['refused']:3d}  torch refuses too {c['both']}")
    print("total refused:", len(refused))
    for r in refused:
        print("  ", r)
    sys.exit(0)
