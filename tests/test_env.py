"""Environment variables and the command line, each in a fresh interpreter.

FASTSOFTMAX_ISA forces a tier (each supported one is reported by isa());
an unknown value, or a tier this CPU lacks, is an error at import that names
the valid values and never a crash on a signal. FASTSOFTMAX_NUM_THREADS sets
the default thread count, OMP_NUM_THREADS when it is unset; a bad value is a
ValueError. `python -m fastsoftmax info` names the tier and OpenMP.
`import fastsoftmax` imports neither torch nor scipy.
"""
import os
import subprocess
import sys

import pytest

import fastsoftmax
from fastsoftmax import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastsoftmax.__file__)))
ENV_VARS = ("FASTSOFTMAX_ISA", "FASTSOFTMAX_NUM_THREADS", "OMP_NUM_THREADS")
ALL_TIERS = ("generic", "avx2", "avx512f")


def run(code=None, args=None, **env):
    """Run python -c code (or python args) with a clean fastsoftmax environment plus env."""
    e = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")  # the package under test
    e.update(env)
    cmd = [sys.executable] + (["-c", code] if code is not None else args)
    return subprocess.run(cmd, env=e, cwd=ROOT, capture_output=True, text=True, timeout=120)


def assert_clean_error(p, *words):
    """An ordinary Python error exit (not a signal), mentioning each word."""
    assert p.returncode > 0, f"exit {p.returncode} (negative = killed by a signal)\n{p.stderr}"
    for w in words:
        assert w in p.stderr, f"{w!r} not in:\n{p.stderr}"


@pytest.mark.parametrize("tier", _core.supported_tiers())
def test_isa_env_selects_each_supported_tier(tier):
    p = run("import numpy as np, fastsoftmax as fs;"
            "print(fs.isa());"
            "y = fs.softmax(np.arange(100, dtype=np.float32));"
            "print(abs(float(y.sum()) - 1) < 1e-6)", FASTSOFTMAX_ISA=tier)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [tier, "True"]


@pytest.mark.parametrize("value", ["sse9", "AVX1024", "generic,avx2", "neon-ish"])
def test_isa_env_unknown_value_is_an_error_naming_valid_values(value):
    p = run("import fastsoftmax", FASTSOFTMAX_ISA=value)
    assert_clean_error(p, "ValueError", "FASTSOFTMAX_ISA", *ALL_TIERS)


def test_isa_env_unsupported_tier_is_an_error_not_a_crash():
    missing = [t for t in _core.tier_names() if t not in _core.supported_tiers()]
    if not missing:
        pytest.skip("this CPU supports every tier")
    p = run("import fastsoftmax; print('imported')", FASTSOFTMAX_ISA=missing[-1])
    assert_clean_error(p, "ValueError", "FASTSOFTMAX_ISA", *_core.supported_tiers())
    assert "imported" not in p.stdout


def test_isa_env_unset_or_empty_picks_the_best_tier():
    best = _core.supported_tiers()[-1]
    assert run("import fastsoftmax as fs; print(fs.isa())").stdout.strip() == best
    assert run("import fastsoftmax as fs; print(fs.isa())", FASTSOFTMAX_ISA="").stdout.strip() == best


@pytest.mark.parametrize("env, expected", [
    ({"FASTSOFTMAX_NUM_THREADS": "3"}, 3),
    ({"FASTSOFTMAX_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "3"}, 3),
    ({"OMP_NUM_THREADS": "5"}, 5),
    ({"OMP_NUM_THREADS": "4,2"}, 4),  # OpenMP's nested list: the first level counts
    ({"FASTSOFTMAX_NUM_THREADS": "2", "OMP_NUM_THREADS": "7"}, 2),  # ours wins
])
def test_thread_count_from_environment(env, expected):
    p = run("import numpy as np, fastsoftmax as fs; print(fs.get_num_threads());"
            "print(fs.softmax(np.zeros(100000, np.float32))[0])", **env)
    assert p.returncode == 0, p.stderr
    n, v = p.stdout.split()
    assert int(n) == expected
    assert float(v) == 1e-5


def test_thread_count_default_is_a_positive_int():
    p = run("import fastsoftmax as fs; print(fs.get_num_threads())")
    assert p.returncode == 0, p.stderr
    assert int(p.stdout) >= 1


@pytest.mark.parametrize("value", ["0", "-2", "abc", "2.5"])
def test_bad_num_threads_env_is_a_value_error(value):
    p = run("import fastsoftmax", FASTSOFTMAX_NUM_THREADS=value)
    assert_clean_error(p, "ValueError", "FASTSOFTMAX_NUM_THREADS")


def test_info_command():
    p = run(args=["-m", "fastsoftmax", "info"])
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert fastsoftmax.__version__ in out
    assert "openmp" in out.lower()
    assert _core.supported_tiers()[-1] in out
    for t in _core.supported_tiers():
        assert t in out


def test_info_command_reports_forced_tier_and_threads():
    p = run(args=["-m", "fastsoftmax", "info"], FASTSOFTMAX_ISA="generic", FASTSOFTMAX_NUM_THREADS="3")
    assert p.returncode == 0, p.stderr
    in_use = [line for line in p.stdout.splitlines() if "in use" in line]
    assert in_use and "generic" in in_use[0], p.stdout
    threads = [line for line in p.stdout.splitlines() if "thread" in line.lower()]
    assert threads and "3" in threads[0], p.stdout


def test_import_does_not_import_optional_packages():
    p = run("import sys, fastsoftmax, numpy as np;"
            "fastsoftmax.softmax(np.ones(3));"
            "bad = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'scipy', 'jax', 'pandas', 'numba'});"
            "print(bad)")
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "[]"
