"""``python -m convext bench``: the one benchmark entry point, in its smallest mode.

The figures themselves are not checked (they depend on the machine); what is checked is that the
tables are consistent with the shapes' own work counts, that the ratios are the ratios of the
printed times, and that impossible figures and a shared machine are reported as such.
"""

import importlib.util
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convext as cx
from convext.bench import _common, peak

SRC = str(Path(cx.__file__).resolve().parents[1])
HAVE_TORCH = importlib.util.find_spec("torch") is not None
# lenet-c1: N=64, C=1, 28x28, F=6, 5x5, pad 2 -> 28x28 output
LENET_C1_FLOPS = 2.0 * 64 * 6 * 28 * 28 * 1 * 5 * 5


def _bench(*args):
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "convext", "bench", *args],
        capture_output=True,
        text=True,
        env=env,
        # a guard against a hang, not a speed check: instrumented builds on a shared machine are
        # slow (the debug build at -O0 took over 120 s for bench layers --quick)
        timeout=600,
    )


def _tables(text):
    """{section title: [header, row, row, ...]} of the markdown tables in the output."""
    tables, title, rows = {}, None, None
    for line in text.splitlines():
        if line.startswith("## "):
            title, rows = line[3:], None
        elif line.startswith("| ") and title is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if rows is None:
                rows = tables[title] = [cells]
            else:
                rows.append(cells)
    return tables


def _section(tables, prefix):
    (title,) = [t for t in tables if t.startswith(prefix)]
    header, *rows = tables[title]
    return [dict(zip(header, r, strict=True)) for r in rows], header


def _half_unit(text):
    """Half a unit in the last printed place of a decimal such as '12.3' (0.05)."""
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    return 0.5 * 10.0**-decimals


def _assert_printed_ratio(ratio_text, a_text, b_text):
    """The printed ratio is a / b for some a and b that print as a_text and b_text: each printed
    figure is exact to half a unit in its last place, so the ratio lies in the interval those
    roundings allow, widened by the ratio's own rounding."""
    a, b = float(a_text), float(b_text)
    da, db = _half_unit(a_text), _half_unit(b_text)
    assert b - db > 0, f"{b_text} is too coarse to give a ratio"
    low, high = max(a - da, 0.0) / (b + db), (a + da) / (b - db)
    dr = _half_unit(ratio_text)
    assert low - dr - 1e-12 <= float(ratio_text) <= high + dr + 1e-12, (ratio_text, a_text, b_text)


def _check_peak_and_conv(out):
    tables = _tables(out)
    peaks, _ = _section(tables, "Ceiling")
    counts = [int(r["threads"]) for r in peaks]
    assert counts == peak.thread_counts(counts[-1])
    for r in peaks:
        assert float(r["GFLOP/s"]) > 0
        assert float(r["per thread"]) == pytest.approx(
            float(r["GFLOP/s"]) / int(r["threads"]), abs=0.051
        )
    ceiling = float(peaks[-1]["GFLOP/s"])
    conv, header = _section(tables, "Convolution")
    assert [r["pass"] for r in conv] == ["forward", "backward", "fwd+bwd"]
    assert {r["shape"] for r in conv} == {"lenet-c1"}
    for r, work in zip(conv, (1, 2, 3), strict=True):
        ms = float(r["convext ms"])
        rate = work * LENET_C1_FLOPS / (ms * 1e-3) / 1e9
        # printed to 3 decimals of ms and 1 of GFLOP/s: the two rounding errors add up (the rate
        # from the rounded ms is off by up to rate * 0.0005 / ms, to first order)
        bound = 0.05 + rate * (0.5e-3 / ms) * 1.01 + 1e-9
        assert abs(float(r["convext GFLOP/s"]) - rate) <= bound
        frac = float(r["convext % peak"].rstrip("!%")) / 100
        assert frac == pytest.approx(
            float(r["convext GFLOP/s"]) / ceiling, abs=0.006 + 0.1 / ceiling
        )
        # "!" marks a rate above the peak before rounding: the printed percentage is then at
        # least 100 (100%! for 100.0-100.5%), and without it at most 100
        if r["convext % peak"].endswith("!"):
            assert frac >= 1
        else:
            assert frac <= 1
    assert "## Machine load" in out
    assert ("WARNING: this run shared the machine" in out) != ("no sign of other load" in out)
    return conv, header


def test_bench_quick_without_torch():
    r = _bench("all", "--quick", "--shapes", "lenet-c1", "--no-torch")
    assert r.returncode == 0, r.stderr
    assert "convext only: --no-torch" in r.stdout
    _, header = _check_peak_and_conv(r.stdout)
    assert not any("torch" in h for h in header)
    assert "(no pooling shape selected)" in r.stdout
    assert "(network not selected)" in r.stdout


def test_bench_layers_finds_resnet18s_eleven_convolutions():
    """The per-layer family's geometries against ResNet-18's architecture written out by hand
    (torchvision's layout): the stem, one 3x3 per stage, the stride-2 3x3 and 1x1 downsample
    that open stages 2-4, and the 3x3 at the new width."""
    from convext.bench import layers

    found = {(chw, w[:2], w[2:], s) for _, chw, w, s, *_ in layers.distinct_layers(["resnet18"])}
    want = {((3, 224, 224), (64, 3), (7, 7), (2, 2)), ((64, 56, 56), (64, 64), (3, 3), (1, 1))}
    for c, hw in ((64, 56), (128, 28), (256, 14)):
        want |= {
            ((c, hw, hw), (2 * c, c), (3, 3), (2, 2)),
            ((c, hw, hw), (2 * c, c), (1, 1), (2, 2)),
            ((2 * c, hw // 2, hw // 2), (2 * c, 2 * c), (3, 3), (1, 1)),
        }
    assert len(want) == 11
    assert found == want


@pytest.mark.parametrize(
    "chw, wshape, stride, padding, dilation, groups",
    [
        ((4, 7, 7), (8, 4, 3, 3), 1, 1, 1, 1),
        ((2, 9, 11), (4, 2, 3, 5), 2, 2, 1, 1),
        ((6, 8, 8), (6, 1, 3, 3), 1, 3, 2, 6),
        ((3, 6, 9), (4, 3, 2, 4), 1, "same", 1, 1),
        ((3, 10, 8), (4, 3, 3, 3), 1, (2, 0, 1, 3), 1, 1),
        ((3, 14, 14), (4, 3, 1, 1), 1, 0, 1, 1),
    ],
)
def test_bench_layers_counts_the_products_inside_the_input(
    chw, wshape, stride, padding, dilation, groups
):
    """The share of nominal products whose tap reads the input, not its padding, against a
    count over an input of ones padded by conv2d itself (a product is inside where the padded
    input is 1)."""
    from convext import conv2d
    from convext.bench import layers

    C, H, W = chw
    F, Cg, kh, kw = wshape
    # each output of a convolution of ones with a weight of ones counts its taps inside
    inside = conv2d(np.ones((1, C, H, W)), np.ones(wshape), None, stride, padding, dilation, groups)
    nominal = inside.size * Cg * kh * kw
    want = inside.sum() / nominal
    got = layers.inside_fraction(chw, wshape, stride, padding, dilation, groups)
    assert got == pytest.approx(want, rel=1e-12)
    assert (got == 1.0) == (padding == 0)


def test_bench_layers_prints_one_row_per_layer_and_the_summary():
    r = _bench("layers", "--quick", "--shapes", "layers-resnet18", "--no-torch")
    assert r.returncode == 0, r.stderr
    assert "11 distinct layers of resnet18" in r.stdout
    rows = [line for line in r.stdout.splitlines() if line.startswith("| resnet18.")]
    assert len(rows) == 11
    assert rows[0].split("|")[2].strip() == "3x224x224 -> 64, 7x7 s2"
    assert "largest 3x3 resnet18." in r.stdout
    assert "; torch " not in r.stdout  # without torch, no torch figures


def test_bench_holds_glibcs_malloc_thresholds_unless_told_not_to():
    """The first lines say which allocator setting the figures were measured with; the setting is
    glibc's (mallopt), so it is only claimed where glibc's malloc serves the process: Linux with
    glibc, and no AddressSanitizer runtime preloaded (its malloc refuses mallopt)."""
    r = _bench("conv", "--quick", "--shapes", "lenet-c1", "--no-torch")
    assert r.returncode == 0, r.stderr
    glibc = (
        sys.platform.startswith("linux")
        and platform.libc_ver()[0] == "glibc"
        and "libasan" not in os.environ.get("LD_PRELOAD", "")
    )
    held = "allocator: glibc mmap threshold 32 MiB and trim threshold 1024 MiB, fixed"
    assert (held in r.stdout) == glibc
    r = _bench("conv", "--quick", "--shapes", "lenet-c1", "--no-torch", "--default-malloc")
    assert r.returncode == 0, r.stderr
    assert "allocator: the C library's malloc with its default settings" in r.stdout


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_bench_quick_with_torch_has_ratio_columns():
    r = _bench("conv", "--quick", "--shapes", "lenet-c1")
    assert r.returncode == 0, r.stderr
    conv, header = _check_peak_and_conv(r.stdout)
    assert {"torch ms", "torch GFLOP/s", "convext/torch"} <= set(header)
    for row in conv:
        _assert_printed_ratio(row["convext/torch"], row["convext ms"], row["torch ms"])
    assert "conv geometric mean convext/torch:" in r.stdout


@pytest.mark.skipif(not HAVE_TORCH, reason="torch is not installed")
def test_bench_layers_gives_torchs_fraction_of_the_peak_for_the_largest_3x3():
    """The summary of the largest 3x3 layers gives torch's rate on each as a fraction of the same
    FMA peak: torch's fraction over convext's is the layer's printed convext/torch time ratio, up
    to the rounding of the printed figures."""
    r = _bench("layers", "--quick", "--shapes", "layers-resnet18")
    assert r.returncode == 0, r.stderr
    rows, _ = _section(_tables(r.stdout), "Layers")
    by_name = {row["layer"]: row for row in rows}
    lines = [line for line in r.stdout.splitlines() if line.startswith("largest 3x3 ")]
    assert lines
    for line in lines:
        m = re.match(
            r"largest 3x3 (\S+) .*= (\d+)% of the FMA peak, backward (\d+)% .*; "
            r"torch forward (\d+)%, backward (\d+)%$",
            line,
        )
        assert m, line
        name, ours_f, ours_b, torch_f, torch_b = m.groups()
        for p, ours, theirs in (("forward", ours_f, torch_f), ("backward", ours_b, torch_b)):
            if int(ours) == 0:  # (a build at -O0) a 0% gives no ratio to check against
                continue
            # convext time / torch time = torch's rate / convext's rate
            _assert_printed_ratio(by_name[name][f"b16 {p} /torch"], theirs, ours)


@pytest.mark.parametrize(
    "args, message",
    [
        (("nope",), "unknown benchmark family 'nope'"),
        (("conv", "--shapes", "lenet-c9"), "unknown shape(s) lenet-c9"),
        (("conv", "--threads", "0"), "argument --threads: 0 is not in [1, 1024]"),
        (("conv", "--threads", "5000"), "argument --threads: 5000 is not in [1, 1024]"),
        (("conv", "--repeats", "0"), "argument --repeats: 0 is not in [1, 1000]"),
        (("conv", "--repeats", "x"), "argument --repeats: 'x' is not an int"),
    ],
)
def test_bench_rejects_bad_arguments(args, message):
    r = _bench(*args, "--no-torch")
    assert r.returncode != 0
    assert message in r.stderr


@pytest.mark.parametrize("repeats", ["1000", "1001", "100000000000"])
def test_bench_repeats_is_bounded_before_anything_runs(monkeypatch, capsys, repeats):
    """--repeats is at most 1000: argparse's usage error naming it (exit status 2), before the
    benchmark starts; without the bound 10**11 timed runs per figure ran for ever. In-process,
    the benchmark replaced by a recorder (a missing check must not run it)."""
    import convext.bench
    from convext.__main__ import main

    ran = []
    monkeypatch.setattr(convext.bench, "run", lambda args: ran.append(args.repeats) or 0)
    if repeats == "1000":
        assert main(["bench", "conv", "--repeats", repeats]) == 0
        assert ran == [1000]
        return
    with pytest.raises(SystemExit) as e:
        main(["bench", "conv", "--repeats", repeats])
    assert e.value.code == 2 and not ran
    message = f"python -m convext bench: error: argument --repeats: {repeats} is not in [1, 1000]"
    assert message in capsys.readouterr().err


def _context(ceiling):
    return _common.Context(
        torch=None, threads=2, repeats=1, quick=True, shapes=None, ceiling=ceiling,
        ceiling_estimate=False, watch=_common.LoadWatch(2),
    )  # fmt: skip


def test_figures_above_the_peak_are_flagged_impossible(capsys):
    ctx = _context(ceiling=10.0)
    # 1 GFLOP in 50 ms = 20 GFLOP/s (200% of the peak); in 200 ms = 5 GFLOP/s (50%)
    rows = [
        ("big", "forward", 0.05, float("nan"), 1e9),
        ("small", "forward", 0.2, float("nan"), 1e9),
    ]
    _common.ratio_table(rows, "GFLOP/s", 1, "conv", ctx, peak_flops=True)
    out = capsys.readouterr().out
    assert "200%!" in out and "| 50%" in out and "50%!" not in out
    warns = ctx.watch.warnings()
    assert any("impossible" in w and "big forward 200%" in w for w in warns)
    assert not any("small" in w for w in warns)
    ctx.watch.report()
    assert "WARNING: this run shared the machine" in capsys.readouterr().out


def test_load_watch_flags_shared_cores_drift_and_spread():
    watch = _common.LoadWatch(2)
    watch.load_start = 0.0
    watch.check_scaling({1: 100.0, 2: 195.0})
    watch.check_drift(195.0, 190.0)
    watch.record_spread([1.0, 1.05, 1.1])
    assert not [w for w in watch.warnings() if "load average" not in w]
    watch.check_scaling({1: 100.0, 2: 120.0})
    watch.check_drift(195.0, 120.0)
    watch.record_spread([1.0, 2.0, 3.0])
    watch.record_spread([1.0, 2.0, 3.0])
    text = "\n".join(watch.warnings())
    assert "2 threads reach 1.20x one thread's FMA peak" in text
    assert "moved from 195.0 to 120.0" in text
    assert "repeats of one figure differ by 100%" in text


def test_fma_peak_is_positive_and_rejects_bad_threads():
    assert peak.measure(1, quick=True, repeats=1) > 0
    assert peak.thread_counts(1) == [1]
    assert peak.thread_counts(6) == [1, 2, 4, 6]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            peak.measure(bad)


def test_fma_peak_chains_fit_the_vector_registers():
    # every chain and the two constants must stay in registers (a spilled chain measured half the
    # peak on AVX2): 16 chains where there are 32 vector registers, 12 where there are 16
    from convext._kernels import _isa, _peak

    expected = {"avx512": 16, "neon": 16, "avx2": 12}
    generic = 16 if platform.machine().lower() in ("aarch64", "arm64") else 12
    assert peak.chains() == expected.get(_isa.active(), generic)
    assert peak.flops_per_step(2) == 2 * 2 * peak.chains() * _peak.fma_lanes()


@pytest.mark.skipif(
    os.environ.get("CONVEXT_ASAN") == "1",
    reason="torch.onnx.export throws C++ exceptions, which abort under ASan's __cxa_throw "
    "interceptor (inside torch, not convext)",
)
def test_bench_network_zoo_rows():
    """The model-zoo table: one row per selected network, the ratio columns the ratios of the
    printed times ('-' where a library was not timed)."""
    args = ("network", "--quick", "--shapes", "mobilenet_v2-b1")
    r = _bench(*args) if HAVE_TORCH else _bench(*args, "--no-torch")
    assert r.returncode == 0, r.stderr
    assert "(lenet not selected)" in r.stdout
    rows, _ = _section(_tables(r.stdout), "Whole network: model zoo")
    assert [row["network"] for row in rows] == ["mobilenet_v2 inference b1"]
    row = rows[0]
    assert float(row["convext ms"]) > 0
    assert float(row["optimized ms"]) > 0  # optimize_for_inference of the same model
    for ours in ("convext", "optimized"):
        for lib in ("torch", "onnxruntime"):
            if row[f"{lib} ms"] == "-":
                assert row[f"{ours}/{lib}"] == "-"
            else:
                _assert_printed_ratio(row[f"{ours}/{lib}"], row[f"{ours} ms"], row[f"{lib} ms"])
    paired = row["optimized/onnxruntime paired"]
    assert (paired == "-") == (row["onnxruntime ms"] == "-")
    if paired != "-":
        assert float(paired) > 0


def test_bench_network_paired_ratio_is_the_median_of_the_rounds_ratios():
    """The paired column: the median over the rounds of each round's ratio, which a host that
    slows down for some rounds moves less than the ratio of the medians; nan where a library
    was not timed."""
    from convext.bench import network

    # the host slowed rounds 3 and 4 for both, round 2 for one of them only
    ours = [1.0, 2.0, 4.0, 2.0, 1.0]
    theirs = [1.0, 1.0, 4.0, 2.0, 1.0]
    assert network._paired_ratio(ours, theirs) == 1.0
    assert network._median(ours) / network._median(theirs) == 2.0
    # round r against round r, ours over theirs (sorted pairs would give 1.0, theirs/ours 0.5)
    assert network._paired_ratio([2.0, 4.0, 8.0], [1.0, 8.0, 4.0]) == 2.0
    assert np.isnan(network._paired_ratio(ours, []))
    assert np.isnan(network._paired_ratio([], theirs))
    with pytest.raises(ValueError, match="one time per round"):
        network._paired_ratio(ours, theirs[:3])
    # the table's row: medians in ms, ratios of the medians, then optimized over onnxruntime
    # paired (not convext's, not torch's)
    row = network.zoo_row("net", [[9.0] * 3, [2.0, 4.0, 8.0], [5.0] * 3, [1.0, 8.0, 4.0]])
    assert row[:5] == ("net", "9000.0", "4000.0", "5000.0", "4000.0")
    assert row[5:9] == ("1.80", "2.25", "0.80", "1.00")
    assert row[9] == "2.00"
    row = network.zoo_row("net", [[9.0] * 3, [2.0, 4.0, 8.0], [], []])
    assert row[4] == row[6] == row[8] == row[9] == "-"


def test_bench_routes_times_every_accepting_route_and_shows_the_pick():
    """``bench routes``: one row per shape and pass; a time for exactly the routes that accept
    the geometry; the pick column is choose_route's; the fastest is the smallest time."""
    from convext.bench import routes
    from convext.functional import _routes

    names = ("lenet-c1", "depthwise")
    r = _bench("routes", "--quick", "--shapes", ",".join(names))
    assert r.returncode == 0, r.stderr
    rows, header = _section(_tables(r.stdout), "Convolution routes")
    assert header == list(routes.HEADERS)
    assert [(row["shape"], row["pass"]) for row in rows] == [
        (n, p) for n in names for p in _routes.PASSES
    ]
    for row in rows:
        (spec,) = [s for s in routes.SHAPES if s[0] == row["shape"]]
        shape = routes.geometry(*spec[1:])
        times = {}
        for route in _routes.ROUTES:
            if _routes.accepts(route, row["pass"], shape):
                times[route] = float(row[f"{route} ms"])
                assert times[route] > 0
            else:
                assert row[f"{route} ms"] == "-"
        assert row["chosen"] == _routes.choose_route(row["pass"], shape)
        assert row["chosen"] == routes.chosen(row["shape"])[row["pass"]]
        assert times[row["fastest"]] == min(times.values())
        _assert_printed_ratio(
            row["chosen/fastest"], row[f"{row['chosen']} ms"], row[f"{row['fastest']} ms"]
        )
    picks = {(row["shape"], row["pass"]): row["chosen"] for row in rows}
    assert picks[("lenet-c1", "forward")] == "direct"
    assert picks[("depthwise", "grad_input")] == "depthwise"


def test_bench_routes_sweep_crosses_the_direct_limits():
    """The sweep has shapes on both sides of each direct-route channel limit and of the
    valid-taps route's (which takes the forward pass of the padded 3x3 kernels from
    VT_MIN_TAPS taps on: VT_MIN_TAPS // 9 channels of its 3x3 kernels)."""
    from convext.bench import routes
    from convext.functional import _routes

    sweep = [s for s in routes.SHAPES if s[0].startswith("sweep-")]
    channels = {s[2] for s in sweep}
    for limit in (_routes.FWD_DIRECT_MAX_CG, _routes.GW_DIRECT_MAX_CG, _routes.VT_MIN_TAPS // 9):
        assert min(channels) <= limit < max(channels)
    forward = {routes.chosen(s[0])["forward"] for s in sweep}
    grad_weight = {routes.chosen(s[0])["grad_weight"] for s in sweep}
    assert forward == {"direct", "valid_taps"}
    assert grad_weight == {"direct", "gemm"}


def test_bench_serial_times_each_kind_around_its_threshold():
    """``bench serial --quick``: each problem at 1/4, 1 and 4 times its kind's threshold, with
    threads_for's choice for that work, and a break-even line per problem; SERIAL_WORK is
    restored afterwards."""
    from convext import _config
    from convext.bench import serial

    r = _bench("serial", "--quick", "--threads", "2")
    assert r.returncode == 0, r.stderr
    rows, header = _section(_tables(r.stdout), "Serial against parallel")
    assert header == list(serial.HEADERS)
    expected = [(name, kind) for name, kind in serial.SHAPES for _ in serial.QUICK_FACTORS]
    assert [(row["problem"], row["kind"]) for row in rows] == expected
    threads = int(r.stdout.split("threads: ", 1)[1].split()[0])
    for row, (_, kind) in zip(rows, expected, strict=True):
        work, threshold = int(row["work"]), _config.SERIAL_WORK[kind]
        assert float(row["work/threshold"]) == pytest.approx(work / threshold, rel=1e-2)
        t1, tn = float(row["1 thread us"]), float(row["N threads us"])
        assert t1 > 0 and tn > 0
        _assert_printed_ratio(row["N/1"], row["N threads us"], row["1 thread us"])
        assert int(row["threads_for"]) == (1 if work < threshold else threads)
    for name, kind in serial.SHAPES:
        assert f"{name}: " in r.stdout and f"(SERIAL_WORK[{kind!r}] = " in r.stdout


def test_serial_break_even_is_where_n_threads_win_from_then_on():
    from convext.bench import serial

    def rows(*t):  # (work, 1 thread s, N threads s)
        return [("p", "macs", w, a, b) for w, a, b in t]

    assert serial.break_even(rows((1, 1, 2), (2, 2, 1), (4, 4, 1))) == 2
    assert serial.break_even(rows((1, 1, 0.5), (2, 2, 3), (4, 4, 1))) == 4
    assert serial.break_even(rows((1, 1, 2), (2, 2, 3))) is None


def test_serial_problems_do_about_the_work_asked_for():
    import numpy as np

    from convext.bench import serial

    rng = np.random.default_rng(0)
    for name, _ in serial.SHAPES:
        for target in (1 << 16, 1 << 19, 1 << 21):
            fn, work = serial.problem(name, target, rng)
            fn()
            assert 0.5 * target <= work <= 1.5 * target, (name, target, work)


def test_limit_commands_run_only_when_named():
    from convext import bench

    assert bench._families([]) == ["conv", "pool", "network", "layers"]
    assert bench._families(["all"]) == ["conv", "pool", "network", "layers"]
    assert bench._families(["all", "serial"]) == ["conv", "pool", "network", "layers", "serial"]
    assert bench._families(["routes", "serial"]) == ["routes", "serial"]
    with pytest.raises(SystemExit, match="routes, serial"):
        bench._families(["route"])


def test_bench_network_waits_until_the_process_is_idle(monkeypatch):
    """Before a timed call the network benchmark sleeps until a slice passes in which the
    process's threads (another contender's spinning workers) used no CPU."""
    from convext.bench import network

    readings = iter([0.0, 1.0, 2.0, 3.0, 4.0, 4.0])  # busy for two slices, then idle
    seen = []

    def cpu():
        seen.append(next(readings))
        return seen[-1]

    monkeypatch.setattr(network, "_process_cpu_seconds", cpu)
    monkeypatch.setattr(network.time, "sleep", lambda s: None)
    network._wait_idle(0.03)
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0, 4.0]
