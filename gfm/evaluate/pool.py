"""The metric pool: matting errors computed in worker processes while the main process predicts.

Free of torch (the workers import only :mod:`gfm.evaluate.metrics`), so they start in about a
second (numba's cached Grad kernel included).
"""

from __future__ import annotations

import collections
import contextlib
import time

from gfm.evaluate import metrics

__all__ = ["MetricPool", "timed_metrics"]


class MetricPool:
    """Metric jobs (:func:`timed_metrics`) on ``workers`` processes while the caller predicts; at most
    ``2 * workers`` pending, so predictions do not pile up in memory; inline when ``workers`` <= 1.
    :meth:`results` maps each submitted key to its scores."""

    def __init__(self, workers: int):
        self.workers, self.pending, self.done = int(workers), collections.deque(), {}
        self.executor = _metric_executor(self.workers) if self.workers > 1 else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for _, future in self.pending:
            future.cancel()
        return False

    def submit(self, key, pred, gt, trimap, convention: str = "gfm") -> None:
        if self.executor is None:
            with _named(key):
                self.done[key] = timed_metrics(pred, gt, trimap, convention)
            return
        while len(self.pending) >= 2 * self.workers:
            self._collect_one()
        self.pending.append((key, self.executor.submit(timed_metrics, pred, gt, trimap, convention)))

    def results(self) -> dict:
        while self.pending:
            self._collect_one()
        return self.done

    def _collect_one(self):
        key, future = self.pending.popleft()
        with _named(key):
            self.done[key] = future.result()


def timed_metrics(pred, gt, trimap, convention: str = "gfm") -> dict:
    """:func:`gfm.evaluate.metrics.evaluate` and its wall-clock time, ``metrics_s``."""
    start = time.perf_counter()
    scores = metrics.evaluate(pred, gt, trimap, convention)
    return {**scores, "metrics_s": time.perf_counter() - start}


@contextlib.contextmanager
def _named(key):
    """A metric's ValueError (bad input) prefixed with the job's key (the image)."""
    try:
        yield
    except ValueError as error:
        raise ValueError(f"{key}: {error}") from error


_EXECUTORS: dict = {}


def _metric_executor(workers: int):
    """A loky process pool of ``workers`` kept for this module's own use. Not loky's global reusable
    executor: joblib.Parallel (gfm.core.parallel, used by other stages in the same kernel)
    re-configures that one."""
    from joblib.externals.loky import ProcessPoolExecutor

    executor = _EXECUTORS.get(workers)
    if executor is None or getattr(executor, "_broken", False) or getattr(executor, "_shutdown_thread", False):
        executor = _EXECUTORS[workers] = ProcessPoolExecutor(max_workers=workers)
    return executor
