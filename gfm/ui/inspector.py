"""The live composition-artifact inspector (an ipywidgets control panel; Sect. 4, Fig. 3).

Controls pick a foreground, a background and a real photo to compare with, and set the foreground
method, denoising, the blur kernel and the noise σ. Every change recomputes
:func:`gfm.compose.inspect.inspect` (the composite a route stores for those decisions) and redraws
:func:`gfm.compose.figures.inspector_figure` with the measure tables. The computation lives in
:mod:`gfm.compose.inspect`; this module only wires the controls.
"""

from __future__ import annotations

from typing import Sequence

import ipywidgets as widgets

from gfm.compose import discrepancy
from gfm.compose.figures import inspector_figure
from gfm.compose.inspect import (BLUR_KERNELS, FG_METHODS, NOISE_SIGMAS, Settings, as_background,
                                 as_foreground, band_table, inspect, measures_table)
from gfm.compose.stage import ComposeResult
from gfm.core.config import Params
from gfm.ui import widgets as gfm_widgets


def build_inspector(foregrounds: Sequence, backgrounds: Sequence, real_examples: Sequence = (), *,
                    fg_methods: Sequence[str] = FG_METHODS, blur_kernels: Sequence[int] = BLUR_KERNELS,
                    noise_sigmas: Sequence[float] = NOISE_SIGMAS, denoiser: str = "nlm",
                    zoom_size: int = 96, margin: int = 10, seed: int = 0) -> "Inspector":
    """The live composition-artifact inspector (an ipywidgets VBox).

    Parameters
    ----------
    foregrounds : sequence of ForegroundItem or (name, image, alpha)
    backgrounds : sequence of BackgroundItem or (name, image)
    real_examples : sequence of ForegroundItem or (name, image, alpha)
        Real photos whose measures are shown beside the composite's (default: the foregrounds).
    fg_methods, blur_kernels, noise_sigmas : sequences
        Choices offered by the controls (blur kernel 0 / σ 0 mean off); the first is the default.
    denoiser : str
        ``gfm.compose.denoise`` method of the denoise toggle.
    zoom_size, margin, seed : int
        As in ``gfm.compose.inspect.inspect``; ``seed`` fixes the noise realisation.
    """
    foregrounds = [as_foreground(item) for item in foregrounds]
    backgrounds = [as_background(item) for item in backgrounds]
    real = [as_foreground(item) for item in real_examples] or foregrounds
    for name, seq in (("foregrounds", foregrounds), ("backgrounds", backgrounds),
                      ("fg_methods", fg_methods), ("blur_kernels", blur_kernels), ("noise_sigmas", noise_sigmas)):
        if len(seq) == 0:
            raise ValueError(f"build_inspector: {name} must not be empty")
    return Inspector(foregrounds, backgrounds, real, fg_methods=tuple(fg_methods),
                     blur_kernels=tuple(int(k) for k in blur_kernels),
                     noise_sigmas=tuple(float(s) for s in noise_sigmas),
                     denoiser=denoiser, zoom_size=zoom_size, margin=margin, seed=seed)


def stage_inspector(result: ComposeResult, params: Params, *, foregrounds: int = 3) -> "Inspector":
    """The inspector over stage 3's items (``gfm.compose.stage.run``), with params.yaml's choices.

    Offers the first ``foregrounds`` foregrounds, the stage's COCO and BG-20k backgrounds, every
    foreground method (``compose.fg_method`` first), blur off or ``compose.blur_kernels``, and noise
    off, ``compose.noise_sigma`` or twice it.
    """
    cfg = params.compose
    return build_inspector(result.foregrounds[:foregrounds], [b for bgs in result.backgrounds.values() for b in bgs],
                           result.foregrounds,
                           fg_methods=(cfg.fg_method, *[m for m in FG_METHODS if m != cfg.fg_method]),
                           blur_kernels=(0, *cfg.blur_kernels),
                           noise_sigmas=(0.0, cfg.noise_sigma, 2 * cfg.noise_sigma),
                           denoiser=cfg.denoiser, seed=params.seed)


class Inspector(widgets.VBox):
    """The widget returned by :func:`build_inspector`; ``result`` holds the last computation."""

    def __init__(self, foregrounds, backgrounds, real, *, fg_methods, blur_kernels, noise_sigmas,
                 denoiser, zoom_size, margin, seed):
        self._items = {
            "foreground": {it.name: it for it in foregrounds},
            "background": {it.name: it for it in backgrounds},
            "real": {it.name: it for it in real},
        }
        self._real_measures = {}
        self._fixed = dict(denoiser=denoiser, seed=seed)
        self._zoom_size, self._margin = zoom_size, margin
        self.controls = {
            "foreground": widgets.Dropdown(options=list(self._items["foreground"]), description="foreground"),
            "background": widgets.Dropdown(options=list(self._items["background"]), description="background"),
            "real": widgets.Dropdown(options=list(self._items["real"]), description="real photo"),
            "fg_method": widgets.ToggleButtons(options=list(fg_methods), description="F method"),
            "denoise": widgets.Checkbox(value=False, description=f"denoise ({denoiser})"),
            "blur_kernel": widgets.SelectionSlider(options=list(blur_kernels), description="blur kernel"),
            "noise_sigma": widgets.SelectionSlider(options=list(noise_sigmas), description="noise σ"),
        }
        self.figure_output = gfm_widgets.figure_view()
        self.table_output = gfm_widgets.readout_view()
        self.result = None
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        c = self.controls
        super().__init__([
            widgets.HBox([c["foreground"], c["background"], c["real"]]),
            widgets.HBox([c["fg_method"], c["denoise"]]),
            widgets.HBox([c["blur_kernel"], c["noise_sigma"]]),
            self.figure_output,
            self.table_output,
        ])
        self.update()

    def settings(self) -> Settings:
        c = self.controls
        return Settings(fg_method=c["fg_method"].value, denoise=bool(c["denoise"].value),
                        blur_kernel=int(c["blur_kernel"].value), noise_sigma=float(c["noise_sigma"].value),
                        **self._fixed)

    def update(self):
        """Recompute ``inspect`` for the current controls and redraw."""
        c = self.controls
        fg_item = self._items["foreground"][c["foreground"].value]
        bg_item = self._items["background"][c["background"].value]
        settings = self.settings()
        composite, zoom, measures = inspect(fg_item, bg_item, settings,
                                            zoom_size=self._zoom_size, margin=self._margin)
        reference = self._reference(c["real"].value)
        self.result = {"settings": settings, "composite": composite, "zoom": zoom,
                       "measures": measures, "reference": reference,
                       "table": measures_table(measures, reference), "band": band_table(measures)}
        fig = inspector_figure(composite, zoom, measures, reference,
                               title=f"{fg_item.name} over {bg_item.name}: {settings.label()}",
                               reference_label=f"real: {c['real'].value}")
        gfm_widgets.show_figure(self.figure_output, fig)
        gfm_widgets.show_html(self.table_output, self.result["table"].round(3).to_html()
                              + self.result["band"].round(3).to_html(), name="measures")

    def _reference(self, name):
        if name not in self._real_measures:
            item = self._items["real"][name]
            self._real_measures[name] = discrepancy.measure(item.image, item.alpha, margin=self._margin)
        return self._real_measures[name]

    def _on_change(self, change):
        self.update()
