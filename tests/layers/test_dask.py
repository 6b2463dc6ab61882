"""convext.dask (issue 15): predictions on dask arrays with the threaded scheduler and on a
dask.distributed LocalCluster of 2 worker processes (started and closed here), and a
GridSearchCV of the scikit-learn estimator through joblib's dask backend; every result is
compared exactly with the local one."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import convext as cx  # noqa: E402
import convext.dask as cxd  # noqa: E402
from convext import layers as L  # noqa: E402


def _cnn():
    return L.Sequential(
        L.Conv2D(1, 4, 3, padding=1),
        L.BatchNorm2D(4),
        L.ReLU(),
        L.MaxPool2D(2),
        L.Flatten(),
        L.Dense(64, 5),
    ).reset_parameters(0)


def _images(n=45):
    return np.random.default_rng(0).standard_normal((n, 1, 8, 8)).astype(np.float32)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    c = distributed.Client(cluster)
    try:
        c.run(cx.set_num_threads, 1)  # 1 dask thread x 1 convext thread per worker process
        yield c
    finally:
        c.close()
        cluster.close()


def _loads(c):
    return c.run(lambda: __import__("convext.dask").dask._LOADS)


def test_predict_threaded_scheduler_is_lazy_and_exact():
    model = _cnn()
    X = _images()
    ref = cx.predict(model, X)
    before = cxd._LOADS
    out = cxd.predict(model, da.from_array(X, chunks=(8, 1, 4, 8)))  # split sample axes too
    assert isinstance(out, da.Array) and cxd._LOADS == before  # nothing ran yet
    assert out.shape == ref.shape and out.dtype == ref.dtype
    assert out.chunks[0] == (8, 8, 8, 8, 8, 5)
    got = out.compute(scheduler="threads")
    assert np.array_equal(got, ref)
    assert cxd._LOADS == before + 1  # one rebuild for the 6 blocks
    # 2-D input and 1-D output features
    mlp = L.Sequential(L.Dense(6, 2), L.Tanh()).reset_parameters(1)
    x = np.random.default_rng(1).standard_normal((20, 6))
    assert np.array_equal(
        cxd.predict(mlp, da.from_array(x, chunks=3)).compute(scheduler="threads"),
        cx.predict(mlp, x),
    )


def test_predict_errors():
    model = _cnn()
    with pytest.raises(TypeError, match="^X must be a dask array .*convext.predict"):
        cxd.predict(model, _images())
    with pytest.raises(TypeError, match="^model must be a convext Layer"):
        cxd.predict(object(), da.zeros((2, 1, 8, 8)))
    with pytest.raises(ValueError, match="^batch_size"):
        cxd.predict(model, da.zeros((2, 1, 8, 8)), batch_size=0)
    # unknown sizes along a sample axis (a boolean mask along it) are refused before they are
    # used: dask's rechunk (axis in several chunks) and np.zeros (one chunk) saw them first
    x = da.from_array(np.ones((4, 1, 8, 8), np.float32), chunks=(2, 1, 4, 8))
    for unknown in (x[:, :, x[0, 0, :, 0] > 0], x[:, :, x[0, 0, :, 0].rechunk(8) > 0]):
        assert np.isnan(unknown.shape[2])
        with pytest.raises(ValueError, match=r"^X must have known sizes along its sample axes"):
            cxd.predict(model, unknown, batch_size=float("nan"))


def test_predict_restores_every_layers_mode():
    """The local probe forward of dask's predict leaves each layer in its own mode: a
    BatchNorm frozen in eval mode inside a model in training mode stays frozen."""
    model = _cnn()
    model.train()
    model[1].eval()
    cxd.predict(model, da.from_array(_images(6), chunks=3))
    modes = [layer.training for _, layer in model.named_layers()]
    assert modes == [True, True, False] + [True] * 4  # the model, its conv, the frozen BatchNorm


def test_predict_on_a_local_cluster_is_exact_and_loads_once_per_worker(client):
    model = _cnn()
    X = _images()
    ref = cx.predict(model, X)
    before = _loads(client)
    out = cxd.predict(model, da.from_array(X, chunks=5))  # 9 blocks on 2 workers
    assert np.array_equal(out.compute(), ref)
    after = _loads(client)
    assert sum(after.values()) - sum(before.values()) <= 2  # once per worker at most
    assert all(after[w] - before[w] <= 1 for w in after)
    assert np.array_equal(out.compute(), ref)  # again: the workers' cached models
    assert _loads(client) == after


def test_gridsearch_through_joblib_dask_backend(client):
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    from convext.sklearn import ConvNetClassifier

    d = load_digits()
    X, y = (d.data[:200] / 16.0).astype(np.float32), d.target[:200]
    grid = {"lr": [3e-3, 3e-2]}
    local = GridSearchCV(ConvNetClassifier(epochs=3, random_state=0), grid, cv=2).fit(X, y)
    with distributed.get_task_stream(client) as stream, joblib.parallel_backend("dask"):
        remote = GridSearchCV(
            ConvNetClassifier(epochs=3, random_state=0), grid, cv=2, n_jobs=-1
        ).fit(X, y)
    workers = {task["worker"] for task in stream.data}
    assert len(stream.data) >= 4 and workers <= set(client.scheduler_info()["workers"])
    assert np.array_equal(
        local.cv_results_["mean_test_score"], remote.cv_results_["mean_test_score"]
    )
    assert local.best_params_ == remote.best_params_
    assert np.array_equal(local.predict_proba(X), remote.predict_proba(X))
