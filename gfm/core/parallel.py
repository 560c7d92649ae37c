"""One parallel map for every stage: joblib's loky processes, results in job order, a tqdm bar."""
from __future__ import annotations

from typing import Callable, Iterable, Sequence

__all__ = ["parallel_map"]


def parallel_map(function: Callable, jobs: Sequence[tuple], workers: int, *, progress: bool = True,
                 desc: str = "", unit: str = "it", batch_size: int | str = "auto") -> list:
    """``[function(*job) for job in jobs]`` in ``workers`` processes (inline for ``workers <= 1``
    or a single job), results in job order; a progress bar when ``progress``."""
    from tqdm.auto import tqdm

    jobs = list(jobs)
    bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not progress, dynamic_ncols=True)
    try:
        results = []
        if workers <= 1 or len(jobs) <= 1:
            iterator: Iterable = (function(*job) for job in jobs)
        else:
            from joblib import Parallel, delayed

            parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator", batch_size=batch_size)
            iterator = parallel(delayed(function)(*job) for job in jobs)
        for result in iterator:
            results.append(result)
            bar.update(1)
        return results
    finally:
        bar.close()
