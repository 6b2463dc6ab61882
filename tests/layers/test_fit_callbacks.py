"""fit (issue 15): iterables of batches, validation_split, schedulers, callbacks, checkpoints
and resuming, and what is printed where."""

import io
import json
import math
import os
import sys

import numpy as np
import pytest

import convext as cx
from convext import callbacks as C
from convext import layers as L
from convext.optim import lr_scheduler as S
from convext.training import load_checkpoint, save_checkpoint


def _blobs(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], np.float64)
    X = centres[y] + rng.standard_normal((n, 4)) * 0.8
    return X.astype(np.float32), y


def _mlp(seed=0):
    return L.Sequential(L.Dense(4, 8), L.ReLU(), L.Dense(8, 3)).reset_parameters(seed)


def _cnn(seed=0):  # conv + BatchNorm (buffers) + dense
    return L.Sequential(
        L.Conv2D(1, 4, 3, padding=1),
        L.BatchNorm2D(4),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(36, 3),
    ).reset_parameters(seed)


def _images(n=40, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, 1, 6, 6)).astype(np.float32)
    X[np.arange(n), 0, y, y] += 3.0
    return X, y


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return all(np.array_equal(sa[k], sb[k]) for k in sa)


def _fit(model, X, y=None, **kw):
    opt = kw.pop("opt", None) or cx.optim.SGD(model, lr=0.1, momentum=0.9)
    kw.setdefault("verbose", 0)
    return cx.fit(
        model, X, y, "cross_entropy", opt, kw.pop("epochs", 2), kw.pop("batch_size", 8), **kw
    )


# -- iterables of batches ---------------------------------------------------------------------
def test_batches_from_a_list_equal_arrays_without_shuffle():
    X, y = _blobs()
    a, b = _mlp(), _mlp()
    h1 = _fit(a, X, y, shuffle=False, epochs=3)
    batches = [(X[i : i + 8], y[i : i + 8]) for i in range(0, len(X), 8)]
    h2 = _fit(b, batches, epochs=3)  # re-iterated every epoch
    assert _same(a, b) and h1 == h2


def test_batches_from_a_loader_object_and_a_generator():
    X, y = _blobs()

    class Loader:  # __iter__ starts a fresh pass, as data loaders do
        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            return ((X[i : i + 8], y[i : i + 8]) for i in range(0, len(X), 8))

    loader = Loader()
    a, b = _mlp(), _mlp()
    _fit(a, loader, epochs=3)
    assert loader.passes == 3
    _fit(b, X, y, shuffle=False, epochs=3)
    assert _same(a, b)
    c, d = _mlp(), _mlp()
    _fit(c, ((X[i : i + 8], y[i : i + 8]) for i in range(0, len(X), 8)), epochs=1)
    _fit(d, X, y, shuffle=False, epochs=1)
    assert _same(c, d)


def test_one_shot_generator_for_several_epochs_is_refused_before_training():
    X, y = _blobs()
    model, ref = _mlp(), _mlp()
    gen = ((X[i : i + 8], y[i : i + 8]) for i in range(0, len(X), 8))
    with pytest.raises(TypeError, match=r"^X is a one-shot iterator .*epochs=2"):
        _fit(model, gen, epochs=2)
    assert _same(model, ref)
    # a generator as X next to a y is still refused (issue 9): arrays are expected then
    with pytest.raises(TypeError, match=r"^X must be an array .*generator"):
        _fit(model, (row for row in X), y)


def test_nested_lists_of_numbers_without_y_are_data_not_batches():
    X, y = _blobs()
    with pytest.raises(ValueError, match=r"^y must be the targets for X, got None"):
        _fit(_mlp(), X.tolist())


def test_bad_batches_name_the_batch():
    X, y = _blobs()
    model, ref = _mlp(), _mlp()
    with pytest.raises(TypeError, match=r"^X: batch 1 of epoch 1 must be a pair"):
        _fit(model, [(X[:8], y[:8], y[:8])])
    assert _same(model, ref)  # refused before the first update
    with pytest.raises(ValueError, match=r"^y \(batch 1 of epoch 1\) does not fit the loss"):
        _fit(model, [(X[:8], y[:8] + 5)])
    assert _same(model, ref)
    bad = [(X[:8], y[:8]), (X[8:16, :3], y[8:16])]
    with pytest.raises(ValueError, match=r"^X: batch 2 of epoch 1 has samples of shape \(3,\)"):
        _fit(model, bad)
    with pytest.raises(ValueError, match=r"^y \(batch 2 of epoch 1\) does not fit the loss"):
        _fit(_mlp(), [(X[:8], y[:8]), (X[8:16], y[8:16] + 3)])
    with pytest.raises(ValueError, match=r"^X: batch 1 of epoch 1: X and y must have the same"):
        _fit(_mlp(), [(X[:8], y[:7])])
    with pytest.raises(ValueError, match=r"^validation_split needs arrays"):
        _fit(_mlp(), [(X[:8], y[:8])], validation_split=0.2)


# -- validation_split -------------------------------------------------------------------------
def test_validation_split_holds_out_the_last_fraction():
    X, y = _blobs(50)
    a, b = _mlp(), _mlp()
    h1 = _fit(a, X, y, validation_split=0.3, rng=4)
    split = int(50 * 0.7)
    h2 = _fit(b, X[:split], y[:split], validation_data=(X[split:], y[split:]), rng=4)
    assert _same(a, b) and h1 == h2 and len(h1["val_loss"]) == 2
    for bad in (1.0, -0.1, "0.2", True):
        with pytest.raises(ValueError, match="^validation_split must be a number"):
            _fit(_mlp(), X, y, validation_split=bad)
    with pytest.raises(ValueError, match="not both"):
        _fit(_mlp(), X, y, validation_split=0.2, validation_data=(X, y))
    with pytest.raises(ValueError, match="leaves 0 for training and 2 for validation"):
        _fit(_mlp(), X[:2], y[:2], validation_split=0.6)
    with pytest.raises(ValueError, match="leaves 50 for training and 0 for validation"):
        _fit(_mlp(), X, y, validation_split=1e-17)


# -- schedulers -------------------------------------------------------------------------------
def test_epoch_scheduler_sets_the_lr_of_each_epoch():
    X, y = _blobs()
    model = _mlp()
    opt = cx.optim.SGD(model, lr=0.1)
    h = _fit(model, X, y, opt=opt, epochs=5, scheduler=S.StepLR(opt, step_size=2, gamma=0.5))
    assert h["lr"] == [0.1 * 0.5 ** (e // 2) for e in range(5)]
    assert opt.lr == 0.1 * 0.5 ** (5 // 2)


def test_batch_scheduler_equals_stepping_after_every_optimizer_step():
    X, y = _blobs()
    a, b = _mlp(), _mlp()
    opt_a = cx.optim.Adam(a, lr=0.01)
    _fit(
        a,
        X,
        y,
        opt=opt_a,
        epochs=3,
        rng=2,
        scheduler=S.CosineAnnealingLR(opt_a, T_max=18),
        scheduler_step="batch",
    )
    # by hand: the same loop, stepping the scheduler after each update
    opt_b = cx.optim.Adam(b, lr=0.01)
    sched = S.CosineAnnealingLR(opt_b, T_max=18)
    rng = np.random.default_rng(2)
    for _ in range(3):
        order = rng.permutation(len(X))
        for i in range(0, len(X), 8):
            idx = order[i : i + 8]
            out = b.forward(X[idx])
            _, grad = cx.losses.CrossEntropyLoss()(out, y[idx])
            opt_b.zero_grad()
            b.backward(grad, needs_input_grad=False)
            opt_b.step()
            sched.step()
    assert _same(a, b) and sched.last_epoch == 18


def test_plateau_gets_the_monitored_value():
    X, y = _blobs()
    seen = []

    class Spy(S.ReduceLROnPlateau):
        def step(self, metrics):
            seen.append(metrics)
            super().step(metrics)

    model = _mlp()
    opt = cx.optim.SGD(model, lr=0.1)
    h = _fit(model, X, y, opt=opt, epochs=3, validation_data=(X, y), scheduler=Spy(opt))
    assert seen == h["val_loss"]
    seen.clear()
    h = _fit(model, X, y, opt=opt, epochs=2, scheduler=Spy(opt), scheduler_monitor="accuracy")
    assert seen == h["accuracy"]
    with pytest.raises(ValueError, match="scheduler_step='batch' with ReduceLROnPlateau"):
        _fit(model, X, y, opt=opt, scheduler=Spy(opt), scheduler_step="batch")
    with pytest.raises(ValueError, match="needs validation_data"):
        _fit(model, X, y, opt=opt, scheduler=Spy(opt), scheduler_monitor="val_loss")


def test_scheduler_errors():
    X, y = _blobs()
    model = _mlp()
    opt, other = cx.optim.SGD(model, lr=0.1), cx.optim.SGD(_mlp(), lr=0.1)
    with pytest.raises(ValueError, match="^scheduler: it schedules another optimizer"):
        _fit(model, X, y, opt=opt, scheduler=S.StepLR(other, 2))
    with pytest.raises(TypeError, match="^scheduler must be"):
        _fit(model, X, y, opt=opt, scheduler=object())
    with pytest.raises(ValueError, match="^scheduler_step must be"):
        _fit(model, X, y, opt=opt, scheduler=S.StepLR(opt, 2), scheduler_step="step")


# -- the callback protocol --------------------------------------------------------------------
class Recorder(C.Callback):
    def __init__(self, stop_at_batch=None):
        self.calls, self.stop_at_batch = [], stop_at_batch

    def on_train_begin(self, logs=None):
        self.calls.append(("train_begin", self.params["epochs"], self.params["steps"]))

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_end(self, batch, logs=None):
        self.calls.append(("batch_end", batch, logs["size"]))
        if batch == self.stop_at_batch:
            self.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(("epoch_end", epoch, sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append(("train_end",))


def test_callback_protocol_order_and_logs():
    X, y = _blobs(20)
    rec = Recorder()
    model = _mlp()
    h = _fit(model, X, y, epochs=2, callbacks=[rec], validation_data=(X, y))
    batches = [("batch_end", 0, 8), ("batch_end", 1, 8), ("batch_end", 2, 4)]
    keys = ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert rec.calls == [
        ("train_begin", 2, 3),
        ("epoch_begin", 0),
        *batches,
        ("epoch_end", 0, keys),
        ("epoch_begin", 1),
        *batches,
        ("epoch_end", 1, keys),
        ("train_end",),
    ]
    assert rec.model is model and rec.history is not None and len(h["loss"]) == 2


def test_stop_training_from_a_batch_ends_the_epoch_and_the_run():
    X, y = _blobs(20)
    rec = Recorder(stop_at_batch=1)
    h = _fit(_mlp(), X, y, epochs=3, callbacks=[rec])
    assert [c[0] for c in rec.calls] == [
        "train_begin",
        "epoch_begin",
        "batch_end",
        "batch_end",
        "epoch_end",
        "train_end",
    ]
    assert len(h["loss"]) == 1
    with pytest.raises(TypeError, match=r"^callbacks\[0\] must be"):
        _fit(_mlp(), X, y, callbacks=[print])


# -- EarlyStopping ----------------------------------------------------------------------------
class Sabotage(C.Callback):
    """At the start of epoch ``at``, scale the weights: the loss jumps up and stays there
    (the optimizer has lr 0)."""

    def __init__(self, at):
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            for p in self.model.parameters().values():
                p *= -3.0


@pytest.mark.parametrize("restore", [True, False])
def test_early_stopping_patience_and_restore_best_weights(restore):
    X, y = _blobs(20)
    model = _mlp()
    initial = model.state_dict()
    stop = C.EarlyStopping(monitor="loss", patience=1, restore_best_weights=restore)
    h = _fit(model, X, y, epochs=10, opt=cx.optim.SGD(model, lr=0.0), callbacks=[Sabotage(1), stop])
    assert len(h["loss"]) == 3  # epoch 0 best, epochs 1 and 2 worse: patience 1 exceeded
    assert h["loss"][1] > h["loss"][0] and stop.best_epoch == 0 and stop.stopped_epoch == 2
    final = model.state_dict()
    for k in initial:
        if restore:
            np.testing.assert_array_equal(final[k], initial[k])
        else:
            np.testing.assert_array_equal(final[k], initial[k] * -3.0)


def test_early_stopping_min_delta_mode_and_errors():
    X, y = _blobs(20)
    model = _mlp()
    # lr 0: the loss never changes, so nothing improves by min_delta: stop after patience + 1
    stop = C.EarlyStopping(monitor="loss", patience=2, min_delta=1e-3)
    h = _fit(model, X, y, epochs=10, opt=cx.optim.SGD(model, lr=0.0), callbacks=[stop])
    assert len(h["loss"]) == 4
    assert C.EarlyStopping(monitor="val_accuracy").mode == "max"
    with pytest.raises(ValueError, match=r"monitor='val_loss' is not logged .*validation"):
        _fit(_mlp(), X, y, callbacks=[C.EarlyStopping()])
    with pytest.raises(ValueError, match="^patience"):
        C.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="^mode"):
        C.EarlyStopping(mode="up")
    with pytest.raises(ValueError, match="^min_delta"):
        C.EarlyStopping(min_delta=-1)


# -- checkpoints ------------------------------------------------------------------------------
def _run(tmp_path, epochs, resume=None, every=None):
    X, y = _images()
    model = _cnn()
    opt = cx.optim.Adam(model, lr=0.01)
    sched = S.StepLR(opt, step_size=1, gamma=0.7)
    cbs = [] if every is None else [C.ModelCheckpoint(every)]
    h = cx.fit(
        model,
        X[:30],
        y[:30],
        "cross_entropy",
        opt,
        epochs,
        8,
        validation_data=(X[30:], y[30:]),
        rng=123,
        verbose=0,
        scheduler=sched,
        callbacks=cbs,
        resume_from=resume,
    )
    return model, opt, sched, h


def test_two_epochs_then_resume_two_equals_four_epochs_bitwise(tmp_path):
    path = tmp_path / "ckpt.npz"
    full, opt_full, sched_full, h_full = _run(tmp_path, 4)
    _run(tmp_path, 2, every=str(path))
    resumed, opt_res, sched_res, h_res = _run(tmp_path, 4, resume=str(path))
    assert _same(full, resumed)
    assert h_full == h_res and len(h_res["loss"]) == 4
    assert sched_full.state_dict() == sched_res.state_dict()
    sa, sb = opt_full.state_dict(), opt_res.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        for k, v in sa["state"][i].items():
            assert np.array_equal(v, sb["state"][i][k])
    # a one-off resume does not equal a fresh start: the checkpoint really was used
    fresh, _, _, _ = _run(tmp_path, 2)
    assert not _same(fresh, resumed)


def test_checkpoint_contents_are_pickle_free_and_loadable(tmp_path):
    path = tmp_path / "ckpt-{epoch:02d}.npz"
    model, opt, sched, h = _run(tmp_path, 2, every=str(path))
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01.npz", "ckpt-02.npz"]  # no temp files
    with np.load(tmp_path / "ckpt-02.npz", allow_pickle=False) as z:
        names = set(z.files)  # every member reads without pickle
        for n in names:
            z[n]
    assert "model.1.running_mean" in names and "optimizer.0.exp_avg" in names
    ck = load_checkpoint(tmp_path / "ckpt-02.npz")
    assert ck.epoch == 2 and ck.history == h and ck.optimizer_type == "Adam"
    assert ck.scheduler_type == "StepLR" and ck.scheduler_state == sched.state_dict()
    assert _same(ck.model, model)
    with pytest.raises(ValueError, match=r"training checkpoint .*load_checkpoint"):
        cx.load(tmp_path / "ckpt-02.npz")
    model.save(tmp_path / "model.npz")
    with pytest.raises(ValueError, match=r"cannot load a convext checkpoint .*model file"):
        load_checkpoint(tmp_path / "model.npz")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from convext import _archive

    path = tmp_path / "ckpt.npz"
    model, opt, sched, h = _run(tmp_path, 1, every=str(path))
    before = path.read_bytes()

    def fail(f, arrays):
        f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(_archive, "_write_npz", fail)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, sched, 5, h)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt.npz"]


def test_save_best_only_and_resume_errors(tmp_path):
    X, y = _blobs(20)
    model = _mlp()
    best = C.ModelCheckpoint(tmp_path / "best.npz", monitor="loss", save_best_only=True)
    _fit(model, X, y, epochs=3, opt=cx.optim.SGD(model, lr=0.0), callbacks=[Sabotage(1), best])
    assert load_checkpoint(tmp_path / "best.npz").epoch == 1  # epochs 2 and 3 were worse
    path = tmp_path / "ck.npz"
    _fit(_mlp(), X, y, epochs=1, callbacks=[C.ModelCheckpoint(path)])
    other = L.Sequential(L.Dense(4, 5), L.ReLU(), L.Dense(5, 3))
    snapshot = other.state_dict()
    with pytest.raises(ValueError, match="another architecture"):
        _fit(other, X, y, resume_from=path)
    assert all(np.array_equal(v, other.state_dict()[k]) for k, v in snapshot.items())
    with pytest.raises(ValueError, match="state of a SGD, the optimizer is a Adam"):
        m = _mlp()
        _fit(m, X, y, resume_from=path, opt=cx.optim.Adam(m))
    with pytest.raises(ValueError, match="no scheduler state"):
        m = _mlp()
        o = cx.optim.SGD(m, lr=0.1, momentum=0.9)
        _fit(m, X, y, resume_from=path, opt=o, scheduler=S.StepLR(o, 1))
    with pytest.raises(ValueError, match="after epochs=0"):
        _fit(_mlp(), X, y, resume_from=path, epochs=0)
    with pytest.raises(ValueError, match="has a field"):
        _fit(_mlp(), X, y, callbacks=[C.ModelCheckpoint(tmp_path / "{val_loss}.npz")])

    class Unregistered(L.Layer):
        def forward(self, x):
            return x

        def backward(self, grad_out, needs_input_grad=True):
            return grad_out

    m = L.Sequential(_mlp(), Unregistered())
    with pytest.raises(TypeError, match="^ModelCheckpoint: cannot save a Unregistered"):
        _fit(m, X, y, callbacks=[C.ModelCheckpoint(tmp_path / "x.npz")])
    assert not (tmp_path / "x.npz").exists()
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(ValueError, match="cannot load a convext checkpoint"):
        load_checkpoint(tmp_path / "junk.npz")


# -- TerminateOnNaN and the loggers -----------------------------------------------------------
def test_terminate_on_nan_with_on_nan_continue():
    X, y = _blobs(24)
    X = X.copy()
    X[9] = np.nan  # in the second batch (no shuffle)
    rec = Recorder()
    h = _fit(
        _mlp(),
        X,
        y,
        epochs=3,
        shuffle=False,
        on_nan="continue",
        callbacks=[C.TerminateOnNaN(), rec],
    )
    assert len(h["loss"]) == 1 and math.isnan(h["loss"][0])
    assert [c for c in rec.calls if c[0] == "batch_end"] == [
        ("batch_end", 0, 8),
        ("batch_end", 1, 8),
    ]


def test_csv_and_json_loggers_write_the_history(tmp_path):
    X, y = _blobs(20)
    csv_path, json_path = tmp_path / "h.csv", tmp_path / "h.jsonl"
    h = _fit(
        _mlp(),
        X,
        y,
        epochs=3,
        validation_data=(X, y),
        callbacks=[C.CSVLogger(csv_path), C.JSONLogger(json_path)],
    )
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "epoch,loss,accuracy,val_loss,val_accuracy"
    rows = [list(map(float, line.split(","))) for line in lines[1:]]
    assert [r[0] for r in rows] == [1, 2, 3]
    assert [r[1] for r in rows] == h["loss"] and [r[4] for r in rows] == h["val_accuracy"]
    objs = [json.loads(line) for line in json_path.read_text().splitlines()]
    assert [o["epoch"] for o in objs] == [1, 2, 3]
    assert [o["val_loss"] for o in objs] == h["val_loss"]
    _fit(_mlp(), X, y, epochs=1, callbacks=[C.CSVLogger(csv_path, append=True)])
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 5 and lines.count(lines[0]) == 1  # header once


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")
def test_a_symlink_destination_is_refused_and_its_target_untouched(tmp_path):
    """A log or checkpoint path that is a symbolic link (one planted in a shared folder, say)
    is refused before the first epoch (ValueError naming the argument); its target keeps its
    contents. A link planted after the check is not followed either (O_NOFOLLOW)."""
    X, y = _blobs(20)
    target = tmp_path / "precious.txt"
    target.write_text("precious\n")
    link = tmp_path / "log.csv"
    os.symlink(target, link)
    dangling = tmp_path / "dangling.jsonl"
    os.symlink(tmp_path / "nowhere", dangling)
    for cb, match in [
        (C.CSVLogger(link), "^CSVLogger: filename .* is a symbolic link"),
        (C.CSVLogger(link, append=True), "^CSVLogger: filename .* is a symbolic link"),
        (C.JSONLogger(link), "^JSONLogger: filename .* is a symbolic link"),
        (C.JSONLogger(dangling), "^JSONLogger: filename .* is a symbolic link"),
        (C.ModelCheckpoint(link), "^ModelCheckpoint: filepath .* is a symbolic link"),
    ]:
        with pytest.raises(ValueError, match=match):
            _fit(_mlp(), X, y, epochs=1, callbacks=[cb])
    assert target.read_text() == "precious\n" and not (tmp_path / "nowhere").exists()
    if hasattr(os, "O_NOFOLLOW"):
        late = tmp_path / "late.csv"
        logger = C.CSVLogger(late)
        logger.on_train_begin({})  # checked while the path was free
        os.symlink(target, late)
        with pytest.raises(ValueError, match="^CSVLogger: filename .* is a symbolic link"):
            logger.on_epoch_end(0, {"loss": 1.0})
        assert target.read_text() == "precious\n"
    # a regular file is still written
    plain = tmp_path / "plain.csv"
    _fit(_mlp(), X, y, epochs=1, callbacks=[C.CSVLogger(plain)])
    assert plain.read_text().splitlines()[0] == "epoch,loss,accuracy"


# -- what is printed --------------------------------------------------------------------------
def test_auto_verbosity_writes_plain_lines_to_a_log(capsys):
    X, y = _blobs(20)
    model = _mlp()
    cx.fit(model, X, y, "cross_entropy", cx.optim.SGD(model, lr=0.1), 3, 4)  # 'auto'
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.splitlines() == [
        line for line in out.err.splitlines() if line.startswith("epoch ")
    ]
    assert len(out.err.splitlines()) == 3 and "\r" not in out.err and "\x1b" not in out.err
    cx.fit(model, X, y, "cross_entropy", cx.optim.SGD(model, lr=0.1), 2, 4, verbose=0)
    assert capsys.readouterr().err == ""


def test_auto_verbosity_shows_bars_on_a_terminal(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the built-in counter
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    X, y = _blobs(20)
    model = _mlp()
    cx.fit(model, X, y, "cross_entropy", cx.optim.SGD(model, lr=0.1), 2, 4)
    assert "\r" in err.getvalue() and "epoch 2/2" in err.getvalue()


def test_verbose_errors():
    X, y = _blobs(20)
    model = _mlp()
    with pytest.raises(ValueError, match="^verbose must be"):
        _fit(model, X, y, verbose=3)
    with pytest.raises(ValueError, match="contradicts"):
        _fit(model, X, y, verbose=2, progress=False)


def test_a_failing_on_train_begin_ends_the_callbacks_already_begun(tmp_path):
    X, y = _blobs(20)
    log = C.CSVLogger(tmp_path / "h.csv")
    with pytest.raises(ValueError, match="monitor='val_loss'"):
        _fit(_mlp(), X, y, callbacks=[log, C.EarlyStopping()])
    assert log._file is None  # closed by its on_train_end


def _forge(src, dst, change):
    """Copy checkpoint ``src`` to ``dst`` with ``change(meta)`` applied to its JSON record."""
    import zipfile

    from convext._archive import ARCH_KEY

    with zipfile.ZipFile(src) as zf:
        members = {i.filename: zf.read(i) for i in zf.infolist()}
    key = ARCH_KEY + ".npy"
    meta = json.loads(str(np.load(io.BytesIO(members[key]))))
    change(meta)
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    members[key] = buf.getvalue()
    with zipfile.ZipFile(dst, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


@pytest.mark.parametrize("state", [-1, 2**300])
def test_forged_generator_state_is_a_value_error(tmp_path, state):
    X, y = _blobs(20)
    path = tmp_path / "ck.npz"
    _fit(_mlp(), X, y, epochs=1, rng=0, callbacks=[C.ModelCheckpoint(path)])
    assert load_checkpoint(path).rng_state is not None
    _forge(path, tmp_path / "forged.npz", lambda m: m["rng"]["state"].update(state=state))
    with pytest.raises(ValueError, match="generator state"):
        _fit(_mlp(), X, y, epochs=3, rng=0, resume_from=tmp_path / "forged.npz")


def test_forged_counter_key_is_refused_with_the_field(tmp_path):
    X, y = _blobs(20)
    path = tmp_path / "ck.npz"
    _fit(_mlp(), X, y, epochs=1, callbacks=[C.ModelCheckpoint(path)])
    _forge(path, tmp_path / "f.npz", lambda m: m["history"].update(x={"__counter__": [[[1], 2]]}))
    with pytest.raises(ValueError, match=r"history.*counter's keys"):
        load_checkpoint(tmp_path / "f.npz")


def test_bad_callbacks_fail_fit_before_any_file_or_weight_changes(tmp_path):
    X, y = _blobs(20)
    log = tmp_path / "log.csv"
    log.write_text("precious\n")
    model = _mlp()
    before = model.state_dict()
    # EarlyStopping on val_loss without validation data: refused after CSVLogger began
    with pytest.raises(ValueError, match="val_loss"):
        _fit(model, X, y, callbacks=[C.CSVLogger(log), C.EarlyStopping(monitor="val_loss")])
    assert log.read_text() == "precious\n"
    # a resumed fit that a callback refuses leaves the model as it was
    ck = tmp_path / "ck.npz"
    _fit(_mlp(seed=1), X, y, epochs=1, callbacks=[C.ModelCheckpoint(ck)])
    with pytest.raises(ValueError, match="val_loss"):
        _fit(model, X, y, resume_from=ck, callbacks=[C.EarlyStopping(monitor="val_loss")])
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # files a callback cannot write are refused before the first epoch
    for cb, match in [
        (C.ModelCheckpoint(tmp_path / "missing" / "ck.npz"), "does not exist"),
        (C.ModelCheckpoint(tmp_path), "is a folder"),
        (C.ModelCheckpoint(tmp_path / "{epoch:0999999999}.npz"), "wider than 64"),
        (C.JSONLogger(tmp_path), "is a folder"),
        (C.CSVLogger(tmp_path / "missing" / "log.csv"), "does not exist"),
    ]:
        with pytest.raises(ValueError, match=match):
            _fit(model, X, y, callbacks=[cb])
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(v, before[k])
    with pytest.raises(ValueError, match="separator must be one character"):
        C.CSVLogger(log, separator=",,")


def test_fit_argument_types_are_named():
    X, y = _blobs(20)
    with pytest.raises(TypeError, match="shuffle must be a bool"):
        _fit(_mlp(), X, y, shuffle="no")
    with pytest.raises(TypeError, match="^rng must be"):
        _fit(_mlp(), X, y, rng="x")
    with pytest.raises(ValueError, match="^rng must be"):
        _fit(_mlp(), X, y, rng=-1)
    with pytest.raises(ValueError, match="validation_split must be a number"):
        _fit(_mlp(), X, y, validation_split=10**400)
    with pytest.raises(ValueError, match="min_delta must be finite"):
        C.EarlyStopping(min_delta=10**400)
