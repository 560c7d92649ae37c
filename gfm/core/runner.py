"""Run a stage notebook with papermill: one terminal line per cell with its time, a kernel on IPC.

``python -m gfm.core.runner notebooks/04_train.ipynb reports/notebooks/04_train_ori-tt.ipynb -p experiment ori-tt``
is what each ``dvc.yaml`` stage runs. Compared with the ``papermill`` command it prints, for every
code cell, ``[stage] cell i/n  12.3 s  <first line of the cell>`` (a stage runs minutes on a CPU,
hours on the paper's data), and the kernel talks over IPC sockets in a private temporary folder, so
it has no unencrypted TCP ports to warn about.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from gfm.core import runinfo
from gfm.core.io import atomic_path, write_json

__all__ = ["run_notebook", "main"]


def run_notebook(source: str | Path, output: str | Path, parameters: dict | None = None, *,
                 timeout: int | None = None, stream=None, run_details: str | Path | None = None) -> Path:
    """Execute ``source`` with ``parameters`` into ``output`` (papermill), reporting each cell to ``stream``
    (default: standard output); with ``run_details`` (a folder), write ``<run_details>/<output stem>.json``
    (:func:`gfm.core.runinfo.run_details`). ``timeout`` limits one cell (default: none — a paper-profile
    training cell runs for days). The executed copy lands atomically: a failed run leaves the previous
    ``output`` in place and its own copy as ``<output stem>.failed.ipynb``."""
    import papermill
    from jupyter_client.manager import KernelManager
    from papermill.engines import NBClientEngine, papermill_engines
    from traitlets import Unicode

    stream = sys.stdout if stream is None else stream
    name = Path(output).stem
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    failed = output.with_name(f"{name}.failed.ipynb")
    with tempfile.TemporaryDirectory(prefix="gfm-kernel-") as sockets:

        class IPCKernelManager(KernelManager):
            """A local kernel on IPC sockets in a private folder."""

            transport = Unicode("ipc")
            ip = Unicode(str(Path(sockets) / "kernel"))

        class StageEngine(NBClientEngine):
            @classmethod
            def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
                code = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]
                done = nb_man.cell_complete
                start = time.perf_counter()

                def cell_complete(cell, cell_index=None, **kw):
                    done(cell, cell_index=cell_index, **kw)
                    if cell.cell_type == "code" and cell_index is not None:
                        first = next((line for line in cell.source.splitlines() if line.strip()), "")
                        seconds = cell.metadata.get("papermill", {}).get("duration") or 0.0
                        print(f"[{name}] cell {code.index(cell_index) + 1}/{len(code)} {seconds:7.1f} s"
                              f"  {first[:70]}", file=stream, flush=True)

                nb_man.cell_complete = cell_complete
                try:
                    return super().execute_managed_notebook(nb_man, kernel_name,
                                                            kernel_manager_class=IPCKernelManager, **kwargs)
                finally:
                    print(f"[{name}] {time.perf_counter() - start:.1f} s in all", file=stream, flush=True)

        papermill_engines.register("gfm-stage", StageEngine)
        started = time.time()
        with atomic_path(output) as staged:
            try:
                papermill.execute_notebook(str(source), str(staged), parameters=parameters or {}, cwd=".",
                                           kernel_name="python3", engine_name="gfm-stage", progress_bar=False,
                                           execution_timeout=timeout)
            except BaseException:
                if staged.exists():
                    os.replace(staged, failed)
                    print(f"[{name}] failed; the executed copy is {failed}", file=stream, flush=True)
                raise
        failed.unlink(missing_ok=True)
    if run_details is not None:
        write_json(Path(run_details) / f"{name}.json",
                   {"notebook": str(source), "parameters": parameters or {}, **runinfo.run_details(started=started)})
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gfm.core.runner", description=__doc__.splitlines()[0])
    parser.add_argument("source", help="the stage notebook (notebooks/NN_name.ipynb)")
    parser.add_argument("output", help="the executed copy (reports/notebooks/...)")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                        help="a string parameter of the notebook's parameters cell (repeatable)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds one cell may run (default: no limit)")
    parser.add_argument("--run-details", default="metrics/run",
                        help="folder for <notebook>.json: commit, CPU, versions, wall time (default: metrics/run)")
    args = parser.parse_args(argv)
    run_notebook(args.source, args.output, dict(args.parameter), timeout=args.timeout, run_details=args.run_details)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
