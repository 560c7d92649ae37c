"""Helpers the stage notebooks call first, so they behave the same under papermill (run from the
project root by ``dvc repro``) and in JupyterLab (whose kernels start in ``notebooks/``)."""

from __future__ import annotations

import os
from pathlib import Path


def project_root(start: str | Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding ``dvc.yaml``."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").is_file() and (folder / "gfm").is_dir():
            return folder
    raise FileNotFoundError(f"{here}: not inside the gfm-companion project (no dvc.yaml above it)")


def setup(figure_dpi: int = 80) -> Path:
    """Change to the project root (so params.yaml-relative paths work) and set plotting defaults."""
    root = project_root()
    os.chdir(root)
    import matplotlib as mpl

    try:  # papermill kernels inherit MPLBACKEND; figures must still be embedded in the notebook
        get_ipython().run_line_magic("matplotlib", "inline")  # type: ignore[name-defined]  # noqa: F821
    except NameError:
        pass
    mpl.rcParams["figure.dpi"] = figure_dpi
    mpl.rcParams["savefig.dpi"] = figure_dpi
    return root


def strip_outputs(nb: dict) -> dict:
    """Remove outputs, execution counts and widget state from a notebook (a dict, changed in place).

    Source notebooks are stage code (dvc deps): outputs saved into them would change their hash and
    make ``dvc status`` report the stage changed. Executed copies live in ``reports/notebooks/``.
    """
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def pre_save_hook(model: dict, path: str, contents_manager, **kwargs) -> None:
    """Jupyter ``FileContentsManager.pre_save_hook``: notebooks under ``<project>/notebooks/`` are saved
    without outputs (see :func:`strip_outputs`); other notebooks are saved as they are."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    target = (Path(contents_manager.root_dir) / path).resolve()
    try:
        root = project_root(target.parent)
    except FileNotFoundError:
        return
    if target.parent == root / "notebooks":
        strip_outputs(model["content"])
