"""Widget plumbing shared by the interactive explorers (composition inspector, result browser).

Figures and tables are shown as ``ipywidgets.Image`` / ``ipywidgets.HTML`` values rather than through
``Output`` widgets: output capture interleaves kernel messages in a way that can stall papermill's
client, while plain trait updates cannot. The HTML readout carries a ``data-gfm-readout`` attribute
so a browser test can find it.
"""

from __future__ import annotations

import io

import ipywidgets as widgets


def figure_png(fig, dpi: int = 80) -> bytes:
    """PNG bytes of a matplotlib figure (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def figure_view() -> widgets.Image:
    """An empty image widget for :func:`show_figure`."""
    return widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))


def readout_view() -> widgets.HTML:
    """An empty HTML widget for :func:`show_html`."""
    return widgets.HTML()


def show_figure(view: widgets.Image, fig, dpi: int = 80) -> None:
    """Render ``fig`` into ``view``."""
    view.value = figure_png(fig, dpi=dpi)


def show_html(view: widgets.HTML, html: str, name: str = "readout") -> None:
    """Put ``html`` into ``view``, wrapped in a ``<div data-gfm-readout=name>``."""
    view.value = f'<div data-gfm-readout="{name}">{html}</div>'
