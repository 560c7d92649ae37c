"""gfm.evaluate.pool: metrics in worker processes, keyed and timed; errors name the key."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gfm.evaluate import metrics
from gfm.evaluate.pool import MetricPool, timed_metrics

RNG = np.random.default_rng(0)
GT = RNG.random((20, 30))
PRED = np.clip(GT + RNG.normal(0, 0.1, GT.shape), 0, 1)


def test_timed_metrics_is_evaluate_plus_its_time():
    out = timed_metrics(PRED, GT, None)
    assert out.pop("metrics_s") > 0
    expected = metrics.evaluate(PRED, GT, None)
    assert out.keys() == expected.keys()
    assert all(out[k] == expected[k] or (np.isnan(out[k]) and np.isnan(expected[k])) for k in out)


@pytest.mark.parametrize("workers", [1, 2])
def test_results_by_key_in_any_order(workers):
    with MetricPool(workers) as pool:
        for i in range(5):
            pool.submit(("img", i), np.clip(PRED + 0.01 * i, 0, 1), GT, None)
        results = pool.results()
    assert sorted(results) == [("img", i) for i in range(5)]
    sads = [results[("img", i)]["sad"] for i in range(5)]
    assert sads == [pytest.approx(metrics.sad(np.clip(PRED + 0.01 * i, 0, 1), GT)) for i in range(5)]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_bad_input_names_its_key(workers):
    with pytest.raises(ValueError, match=r"broken.*pred must lie in \[0, 1\]"):
        with MetricPool(workers) as pool:
            pool.submit("broken", PRED + 2, GT, None)
            pool.results()


def test_the_pool_module_needs_no_torch():
    """Workers import gfm.evaluate.pool only: it must not pull torch in (seconds per worker start)."""
    assert all(not name.startswith("torch") for name in _imports_of("gfm.evaluate.pool"))


def _imports_of(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    return set(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split())
