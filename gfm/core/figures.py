"""Saving matplotlib figures as stage outputs (atomically), so later stages read files, not stage code."""
from __future__ import annotations

from pathlib import Path

from gfm.core.io import atomic_path

__all__ = ["save_figure"]


def save_figure(fig, out_dir: str | Path, name: str, *, dpi: int = 110) -> Path:
    """Save ``fig`` as ``<out_dir>/<name>.png`` (atomically) and return the path."""
    path = Path(out_dir) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    return path
