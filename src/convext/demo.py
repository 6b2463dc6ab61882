"""``python -m convext demo``: train a small CNN on scikit-learn's 8x8 handwritten digits.

Two conv-relu-maxpool blocks and two dense layers, trained with Adam (learning rate decaying
along a half cosine) on 75% of the 1797 digits
and tested on the other 25%; prints ``test accuracy: 0.NNN`` and draws the training curves, the
learned first-layer filters and the feature maps of one test digit (``--out``, with matplotlib).
Needs the ``demo`` extra: ``pip install "convext[demo]"``.
"""

import math
import sys
import time

import numpy as np

from ._cli_args import int_in, positive_float
from ._config import MAX_THREADS

INSTALL = 'pip install "convext[demo]"'
MAX_EPOCHS = 10_000  # a run of ~10 hours; more is a typo, not a demo


def _destination_problem(args):
    """Why --out or --save cannot be written (checked before training, which they would
    otherwise only meet after it), or None."""
    from .callbacks import _check_destination

    try:
        if args.out:
            _check_destination(args.out, "--out")
            try:
                from matplotlib.figure import Figure
            except ImportError:
                pass  # no picture: said after training
            else:
                kinds = Figure().canvas.get_supported_filetypes()
                ext = args.out.rsplit(".", 1)[-1].lower() if "." in args.out else "png"
                if ext not in kinds:
                    return f"--out {args.out!r}: matplotlib cannot write .{ext} files"
        if args.save:
            _check_destination(args.save, "--save")
    except ValueError as e:
        return str(e)
    return None


def add_arguments(p):
    p.add_argument(
        "--epochs", type=int_in(1, MAX_EPOCHS), default=15, help="training epochs (default: 15)"
    )
    p.add_argument("--batch-size", type=int_in(1), default=32, help="mini-batch size (default: 32)")
    p.add_argument(
        "--lr", type=positive_float, default=3e-3, help="Adam learning rate (default: 0.003)"
    )
    p.add_argument(
        "--seed",
        type=int_in(0, 2**32 - 1),  # scikit-learn's random_state range
        default=0,
        help="seed of the split, the initial weights and the shuffling (default: 0)",
    )
    p.add_argument(
        "--threads",
        type=int_in(1, MAX_THREADS),
        default=None,
        help="threads for convext's kernels (default: convext's, i.e. "
        "OMP_NUM_THREADS or the CPUs available; the result is the same for "
        "every thread count)",
    )
    p.add_argument(
        "--out",
        default="convext-demo.png",
        help="picture of the curves, filters and feature maps (default: "
        "convext-demo.png; needs matplotlib; '' to skip)",
    )
    p.add_argument(
        "--save",
        default=None,
        metavar="MODEL.npz",
        help="also save the trained model (load it with convext.load)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_model(seed=0):
    """The demo's network for 1x8x8 inputs and 10 classes."""
    from .layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential

    return Sequential(
        Conv2D(1, 32, 3, padding=1),
        ReLU(),
        MaxPool2D(2),  # 32 x 4 x 4
        Conv2D(32, 64, 3, padding=1),
        ReLU(),
        MaxPool2D(2),  # 64 x 2 x 2
        Flatten(),
        Dense(256, 128),
        ReLU(),
        Dense(128, 10),
    ).reset_parameters(np.random.default_rng(seed))


def load_data(seed=0):
    """(X_train, X_test, y_train, y_test): digits scaled to [0, 1], shape (N, 1, 8, 8),
    a stratified 75/25 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]
    return train_test_split(
        X, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )


def draw(path, model, history, digit, label):
    """Curves, first-layer filters and the feature maps of ``digit`` (1, 8, 8) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .layers.base import eval_mode

    epochs = np.arange(1, len(history["loss"]) + 1)
    filters = model[0].parameters()["weight"][:, 0]  # (32, 3, 3)
    with eval_mode(model):
        maps = model[1](model[0](digit[None]))[0]  # (32, 8, 8) after ReLU

    n = len(filters)
    fig = plt.figure(figsize=(12, 12), layout="constrained")
    top, middle, bottom = fig.subfigures(3, 1, height_ratios=[1.2, 1, 1])
    ax1, ax2 = top.subplots(1, 2)
    ax1.plot(epochs, history["loss"], "o-", label="train")
    ax1.plot(epochs, history["val_loss"], "s-", label="test")
    ax1.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax1.legend()
    ax2.plot(epochs, history["accuracy"], "o-", label="train")
    ax2.plot(epochs, history["val_accuracy"], "s-", label="test")
    ax2.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    ax2.legend()
    middle.suptitle("learned first-layer filters (3x3, blue < 0 < red)")
    axes = middle.subplots(n // 8, 8)
    lim = float(np.max(np.abs(filters)))
    for i, ax in enumerate(axes.flat):
        ax.imshow(filters[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{i}", fontsize=8)
        ax.axis("off")
    bottom.suptitle(f"a test digit (a {label}) and its {n} feature maps after conv1 + ReLU")
    axes = bottom.subplots(n // 8, 9)
    axes[0, 0].imshow(digit[0], cmap="gray_r")
    axes[0, 0].set_title("input", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes[i // 8, 1 + i % 8]
        ax.imshow(maps[i], cmap="viridis")
        ax.set_title(f"{i}", fontsize=8)
    fig.suptitle("convext demo: a CNN on scikit-learn's 8x8 digits")
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(args):
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print(f"the demo needs scikit-learn for its dataset: {INSTALL}", file=sys.stderr)
        return 1
    from . import evaluate, fit
    from ._config import get_num_threads, set_num_threads
    from .losses import CrossEntropyLoss
    from .optim import Adam
    from .optim.lr_scheduler import CosineAnnealingLR

    problem = _destination_problem(args)
    if problem:
        print(f"python -m convext demo: {problem}", file=sys.stderr)
        return 2
    if args.threads is not None:
        set_num_threads(args.threads)
    start = time.perf_counter()
    X_train, X_test, y_train, y_test = load_data(args.seed)
    model = build_model(args.seed)
    if not args.quiet:
        print(
            f"{len(X_train)} training and {len(X_test)} test digits (8x8), "
            f"{get_num_threads()} threads\n{model}"
        )
    loss = CrossEntropyLoss()
    steps = args.epochs * math.ceil(len(X_train) / args.batch_size)
    optimizer = Adam(model, lr=args.lr)
    history = fit(
        model,
        X_train,
        y_train,
        loss,
        optimizer,
        epochs=args.epochs,
        batch_size=args.batch_size,
        validation_data=(X_test, y_test),
        rng=args.seed,
        scheduler=CosineAnnealingLR(optimizer, T_max=steps),
        scheduler_step="batch",
        verbose=0 if args.quiet else "auto",
    )
    result = evaluate(model, X_test, y_test, loss)
    if not args.quiet:
        print(f"trained in {time.perf_counter() - start:.1f} s")
    if args.out:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(f"matplotlib is not installed, no picture ({INSTALL})", file=sys.stderr)
        else:
            draw(args.out, model, history, X_test[0], int(y_test[0]))
            print(f"wrote {args.out}")
    if args.save:
        model.save(args.save)
        print(f"saved the model to {args.save}")
    print(f"test accuracy: {result['accuracy']:.3f}")
    return 0
