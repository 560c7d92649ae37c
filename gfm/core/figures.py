"""Saving matplotlib figures as stage outputs (atomically), so later stages read files, not stage code."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

from gfm.core.io import atomic_dir, atomic_path, write_json

__all__ = ["FIGURE_INDEX", "save_figure", "save_figures"]

#: The caption index a stage writes beside its figures: ``[{"file": "<name>.png", "caption": ...}, ...]``.
FIGURE_INDEX = "figures.json"


def save_figure(fig, out_dir: str | Path, name: str, *, dpi: int = 110) -> Path:
    """Save ``fig`` as ``<out_dir>/<name>.png`` (atomically) and return the path."""
    path = Path(out_dir) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path


def save_figures(folder: str | Path, drawings: Mapping[str, tuple[str, Callable]]) -> dict[str, Path]:
    """Draw ``{name: (caption, draw)}`` (``draw()`` returns a figure) into ``folder`` with the caption
    index :data:`FIGURE_INDEX`, replacing the folder in one atomic rename -> ``{name: png path}``."""
    import matplotlib.pyplot as plt

    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        for name, (_, draw) in drawings.items():
            fig = draw()
            save_figure(fig, tmp, name)
            plt.close(fig)
        write_json(tmp / FIGURE_INDEX, [{"file": f"{name}.png", "caption": caption}
                                        for name, (caption, _) in drawings.items()])
    return {name: folder / f"{name}.png" for name in drawings}
