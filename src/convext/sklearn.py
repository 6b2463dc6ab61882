"""scikit-learn estimators around a convext network: ``ConvNetClassifier`` and
``ConvNetRegressor`` (the optional extra ``pip install "convext[sklearn]"``, scikit-learn >= 1.6).

Every setting is a constructor parameter (the network, the loss, the optimizer and its learning
rate, the training settings), stored as given, so ``clone``, ``get_params`` /
``set_params``, ``Pipeline``, ``GridSearchCV`` and ``cross_val_score`` work::

    from sklearn.model_selection import GridSearchCV
    from convext.sklearn import ConvNetClassifier

    clf = ConvNetClassifier(input_shape=(1, 8, 8), epochs=10, random_state=0)
    GridSearchCV(clf, {"lr": [1e-3, 1e-2]}, cv=3).fit(X, y)   # X: (n, 64)

The network
    ``network=None``: a small default: for ``input_shape`` (C, H, W), Conv2D(C, 16, 3,
    padding=1) - ReLU - MaxPool2D(2) (when H, W >= 2) - Flatten - Dense(., 32) - ReLU -
    Dense(32, n_outputs); otherwise Dense(n_features, 32) - ReLU - Dense(32, n_outputs).
    A callable ``network(n_features_or_input_shape, n_outputs) -> Layer`` (``input_shape``
    when it is set, else the number of features), called at every ``fit``. Or a ``Layer``:
    every ``fit`` trains a fresh copy rebuilt from its description (as ``save`` / ``load``
    do, so its type must be registered), re-initialised from ``random_state``; the layer
    given is never modified. The network's parameter dtype is the dtype of the data it sees.
Input
    X is 2-D (n_samples, n_features), as everywhere in scikit-learn; ``input_shape``
    (e.g. ``(1, 28, 28)``) reshapes each row to that sample shape before the network sees it.
Training
    ``fit`` trains a new network for ``epochs`` epochs (``convext.fit``: mini-batches of
    ``batch_size``, shuffled with ``random_state``, ``validation_split``, ``callbacks``,
    ``verbose``); ``partial_fit`` trains one epoch on the data given, keeping the network and
    the optimizer's state between calls (the first call of the classifier takes ``classes``).
    ``history_`` holds fit's history, ``model_`` the trained network, ``optimizer_`` its
    optimizer. With an int ``random_state`` fitting is deterministic (bitwise, for any number
    of threads).
Outputs
    The classifier: ``classes_``, ``predict`` (labels), ``predict_proba`` (softmax of the
    network's outputs; the network returns one logit per class), ``decision_function``
    (the logits), ``score`` (accuracy). The regressor: ``predict`` ((n,) for a 1-D y, else
    (n, n_targets)), ``score`` (R^2). Predictions are float64.

scikit-learn's own ``check_estimator`` (1.9) passes for both estimators with the tags declared
in ``__sklearn_tags__`` (dense input only, no NaN, multi-class classification, multi-output
regression): 54 of the classifier's 55 checks and 52 of the regressor's 53 pass. Expected
failures (``expected_failed_checks``): none. Skipped by scikit-learn itself:
``check_array_api_input`` (it runs only with SCIPY_ARRAY_API=1 and for estimators that
declare array API support, which these do not: the network runs on numpy arrays), and
``check_classifier_data_not_an_array`` / ``check_regressor_data_not_an_array`` when pandas is
not installed (they pass with pandas). ``sample_weight`` is not supported: ``fit`` does not
take it.
"""

import numbers
from collections.abc import Mapping

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import losses as _losses
from . import optim as _optim
from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU, Sequential
from .training import fit as _fit
from .training import predict as _predict

__all__ = ["ConvNetClassifier", "ConvNetRegressor"]

_OPTIMIZERS = {
    "sgd": _optim.SGD,
    "adam": _optim.Adam,
    "adamw": _optim.AdamW,
    "rmsprop": _optim.RMSprop,
    "adagrad": _optim.Adagrad,
}


def default_network(shape, n_outputs, dtype="float32"):
    """The default network (see the module docstring) for a sample shape and n_outputs."""
    if len(shape) == 3:
        c, h, w = shape
        layers = [Conv2D(c, 16, 3, padding=1, dtype=dtype), ReLU()]
        if h >= 2 and w >= 2:
            layers.append(MaxPool2D(2))
            h, w = h // 2, w // 2
        layers += [Flatten(), Dense(16 * h * w, 32, dtype=dtype)]
    else:
        layers = [Flatten()] if len(shape) > 1 else []
        layers.append(Dense(int(np.prod(shape)), 32, dtype=dtype))
    return Sequential(*layers, ReLU(), Dense(32, n_outputs, dtype=dtype))


class _ConvNetBase(BaseEstimator):
    _default_loss = None

    def __init__(
        self,
        network=None,
        input_shape=None,
        loss=None,
        optimizer="adam",
        lr=0.01,
        optimizer_params=None,
        epochs=20,
        batch_size=32,
        shuffle=True,
        validation_split=0.0,
        callbacks=None,
        random_state=None,
        verbose=0,
    ):
        self.network = network
        self.input_shape = input_shape
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.optimizer_params = optimizer_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.validation_split = validation_split
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        tags.input_tags.allow_nan = False
        return tags

    # -- helpers ------------------------------------------------------------------------------
    def _validate_X(self, X, y="no_validation", reset=True):
        kw = dict(dtype=(np.float64, np.float32), ensure_min_samples=1)
        if isinstance(y, str) and y == "no_validation":
            X = validate_data(self, X, reset=reset, **kw)
        else:
            X, y = validate_data(self, X, y, reset=reset, multi_output=True, **kw)
        if X.dtype not in (np.float32, np.float64):
            X = X.astype(np.float64)
        return X, y

    def _shape(self, X):
        if self.input_shape is None:
            return X
        try:
            shape = tuple(int(s) for s in self.input_shape)
        except (TypeError, ValueError):
            raise TypeError(
                f"input_shape must be a tuple of ints, got {self.input_shape!r}"
            ) from None
        if not shape or min(shape) < 1 or int(np.prod(shape)) != X.shape[1]:
            raise ValueError(
                f"input_shape {self.input_shape!r} does not hold the "
                f"{X.shape[1]} features of a row of X"
            )
        return X.reshape((len(X),) + shape)

    def _seed(self):
        rs = check_random_state(self.random_state)
        return int(rs.randint(np.iinfo(np.int32).max))

    def _build(self, Xs, n_outputs, seed):
        dtype = str(Xs.dtype)
        shape = Xs.shape[1:]
        net = self.network
        if net is None:
            model = default_network(shape, n_outputs, dtype)
        elif isinstance(net, Layer):
            from .layers.base import unallocated
            from .layers.registry import layer_from_spec, layer_spec

            with unallocated():
                model = layer_from_spec(layer_spec(net))
            model._allocate()
        elif callable(net):
            model = net(shape if self.input_shape is not None else shape[0], n_outputs)
            if not isinstance(model, Layer):
                raise TypeError(
                    f"network(...) must return a convext Layer, got {type(model).__name__}"
                )
        else:
            raise TypeError(
                f"network must be None, a convext Layer or a callable "
                f"(n_features_or_input_shape, n_outputs) -> Layer, got "
                f"{type(net).__name__}"
            )
        model.reset_parameters(np.random.default_rng(seed))
        return model

    def _make_optimizer(self, model):
        opt = self.optimizer
        if isinstance(opt, str):
            if opt.lower() not in _OPTIMIZERS:
                raise ValueError(
                    f"optimizer must be one of {sorted(_OPTIMIZERS)} or a "
                    f"convext.optim optimizer class, got {opt!r}"
                )
            opt = _OPTIMIZERS[opt.lower()]
        elif not (isinstance(opt, type) and issubclass(opt, _optim.Optimizer)):
            raise TypeError(
                f"optimizer must be a name or a convext.optim optimizer class, got {opt!r}"
            )
        params = self.optimizer_params or {}
        if not isinstance(params, Mapping):
            raise TypeError(
                f"optimizer_params must be a dict of keyword arguments, got {params!r:.80}"
            )
        try:
            return opt(model, lr=self.lr, **params)
        except TypeError as e:
            raise TypeError(f"optimizer_params: {e}") from None

    def _loss(self):
        return _losses.get(self.loss if self.loss is not None else self._default_loss)

    def _check_settings(self):
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")

    def _train(self, Xs, t, epochs, first, n_outputs, **fitted):
        """Train (``first``: a new network and optimizer) and only then set the fitted
        attributes, ``fitted`` among them: a fit that fails on its arguments leaves a fitted
        estimator as it was (an unfitted one unfitted)."""
        if first:
            seed = self._seed()
            model = self._build(Xs, n_outputs, seed)
            optimizer = self._make_optimizer(model)
            rng = np.random.default_rng(seed + 1)
        else:
            model, optimizer, rng = self.model_, self.optimizer_, self._rng
        hist = _fit(
            model,
            Xs,
            t,
            self._loss(),
            optimizer,
            epochs,
            int(self.batch_size),
            shuffle=bool(self.shuffle),
            rng=rng,
            validation_split=self.validation_split if first else 0.0,
            callbacks=self.callbacks,
            verbose=self.verbose,
        )
        if first:
            self.model_, self.optimizer_, self._rng = model, optimizer, rng
            self.history_, self._n_outputs = {}, n_outputs
        for name, value in fitted.items():
            setattr(self, name, value)
        for k, v in hist.items():
            self.history_.setdefault(k, []).extend(v)

    def _outputs(self, X):
        check_is_fitted(self, "model_")
        X, _ = self._validate_X(X, reset=False)
        Xs = self._shape(X).astype(self._dtype, copy=False)
        return np.asarray(_predict(self.model_, Xs, batch_size=256), dtype=np.float64)


class ConvNetClassifier(ClassifierMixin, _ConvNetBase):
    """A scikit-learn classifier training a convext network with cross-entropy (see the
    module docstring for the parameters).

    Parameters
    ----------
    network : None (a small default), a Layer (copied at every fit) or a callable
        ``(n_features_or_input_shape, n_classes) -> Layer`` returning one logit per class.
    input_shape : None or the sample shape each row of X is reshaped to, e.g. (1, 8, 8).
    loss : None ('cross_entropy') or any loss ``convext.fit`` takes.
    optimizer : 'adam' (default), 'sgd', 'adamw', 'rmsprop', 'adagrad' or a
        ``convext.optim`` optimizer class; built with ``lr`` and ``optimizer_params``.
    epochs, batch_size, shuffle, validation_split, callbacks, verbose : as ``convext.fit``.
    random_state : None, an int or a RandomState: the initial weights and the shuffling.
    """

    _default_loss = "cross_entropy"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = False
        return tags

    def _targets(self, y):
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        return y

    def fit(self, X, y):
        """Train a new network on X (n_samples, n_features) and labels y."""
        self._check_settings()
        X, y = self._validate_X(X, y)
        y = self._targets(y)
        encoder = LabelEncoder().fit(y)
        self._train(
            self._shape(X),
            encoder.transform(y),
            int(self.epochs),
            True,
            len(encoder.classes_),
            _encoder=encoder,
            classes_=encoder.classes_,
            _dtype=X.dtype,
        )
        return self

    def partial_fit(self, X, y, classes=None):
        """One epoch on (X, y). The first call builds the network; its ``classes`` (default:
        the labels in y) are all the labels the classifier will know."""
        first = not hasattr(self, "model_")
        self._check_settings()
        X, y = self._validate_X(X, y, reset=first)
        y = self._targets(y)
        if first:
            encoder = LabelEncoder().fit(y if classes is None else np.asarray(classes))
            dtype = X.dtype
        else:
            encoder, dtype = self._encoder, self._dtype
        unknown = np.setdiff1d(y, encoder.classes_)
        if unknown.size:
            raise ValueError(
                f"y holds labels {unknown[:10].tolist()} that are not in classes_ "
                f"{encoder.classes_[:10].tolist()} (pass every class in the first "
                "partial_fit's classes)"
            )
        self._train(
            self._shape(X).astype(dtype, copy=False),
            encoder.transform(y),
            1,
            first,
            len(encoder.classes_),
            _encoder=encoder,
            classes_=encoder.classes_,
            _dtype=dtype,
        )
        return self

    def decision_function(self, X):
        """The network's outputs (logits), (n_samples, n_classes); with two classes, as
        scikit-learn expects, (n_samples,): logit of classes_[1] minus that of classes_[0]."""
        z = self._outputs(X)
        return z[:, 1] - z[:, 0] if z.shape[1] == 2 else z

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes): the softmax of the logits, float64."""
        z = self._outputs(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, X):
        """The most probable class of each sample."""
        z = self._outputs(X)
        return self.classes_[np.argmax(z, axis=1)]


class ConvNetRegressor(RegressorMixin, _ConvNetBase):
    """A scikit-learn regressor training a convext network with the mean squared error (see
    the module docstring); y is (n,) or (n, n_targets). Parameters as ConvNetClassifier's
    (``loss`` default 'mse')."""

    _default_loss = "mse"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _targets(self, X, y):
        y = np.asarray(y, dtype=X.dtype)
        if y.ndim == 1:
            return y[:, None], False
        return y, True

    def fit(self, X, y):
        """Train a new network on X (n_samples, n_features) and targets y."""
        self._check_settings()
        X, y = self._validate_X(X, y)
        t, multi = self._targets(X, y)
        self._train(
            self._shape(X), t, int(self.epochs), True, t.shape[1], _dtype=X.dtype, _multi=multi
        )
        return self

    def partial_fit(self, X, y):
        """One epoch on (X, y); the first call builds the network."""
        first = not hasattr(self, "model_")
        self._check_settings()
        X, y = self._validate_X(X, y, reset=first)
        dtype = X.dtype if first else self._dtype
        X = X.astype(dtype, copy=False)
        t, multi = self._targets(X, y)
        if not first and (multi != self._multi or t.shape[1] != self._n_outputs):
            raise ValueError(
                f"y has {t.shape[1] if multi else 'one column of'} targets, the "
                f"first partial_fit {self._n_outputs if self._multi else 'one'}"
            )
        self._train(self._shape(X), t, 1, first, t.shape[1], _dtype=dtype, _multi=multi)
        return self

    def predict(self, X):
        """Predictions, float64: (n,) when fit saw a 1-D y, else (n, n_targets)."""
        out = self._outputs(X)
        return out[:, 0] if not self._multi else out
