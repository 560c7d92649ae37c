"""gfm.report.figures: the figures the report draws from stage output files."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from gfm.core.io import write_text  # noqa: E402
from gfm.report import figures, inputs, summaries  # noqa: E402
from gfm.report.numbers import paper_numbers  # noqa: E402


def test_training_curves_per_experiment_over_seeds(tmp_path):
    steps = np.arange(1, 31)
    for name, scale in (("ori-tt", 1.0), ("coco-tt", 2.0)):
        for seed in (0, 1):
            frame = pd.DataFrame({"step": steps, "epoch": steps // 10, "total": (scale + 0.1 * seed) / steps})
            write_text(tmp_path / name / f"s{seed}" / "losses.csv", frame.to_csv(index=False))
    fig = figures.training_curves(inputs.training_losses(tmp_path))
    ax = fig.axes[0]
    assert len(ax.get_lines()) >= 2
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["coco-tt", "ori-tt"]   # one curve each
    assert "range over 2 seeds" in ax.get_title()
    plt.close(fig)
    with pytest.raises(ValueError, match="total"):
        figures.training_curves({"x": pd.DataFrame({"step": [1], "other": [1.0]})})
    with pytest.raises(ValueError, match="no training history"):
        figures.training_curves({})


def test_domain_gap_and_comp_track():
    compose = {"domain_gap": {label: {"n": 4, "noise_gap": g, "sharpness_gap": -g, "resolution_gap": g / 2,
                                      "noise_gap_vs_real": g - 0.1, "distance_to_real": abs(g - 0.1)}
                              for label, g in (("coco", 1.0), ("real", 0.1), ("bg20k", 0.7), ("rssn", 0.2))}}
    fig = figures.domain_gap(compose)
    assert len(fig.axes) == 4
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][0] == "real"          # real photos first
    plt.close(fig)
    with pytest.raises(ValueError, match="domain_gap"):
        figures.domain_gap({})
    experiments = {name: {"track": track, "backbone": "r18_lite"} for name, track in
                   (("ori-tt", "ori"), ("coco-tt", "coco"), ("rssn-tt", "rssn"))}
    summary = summaries.experiment_summary({}, experiments, evaluated={"ori-tt": {"sad": 1.0}, "coco-tt": {"sad": 3.0},
                                                                    "rssn-tt": {"sad": 1.5}})
    fig = figures.comp_track(summary, numbers=paper_numbers(), data="world")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.startswith("this run GFM-TT(r18-lite)") for label in labels)
    assert any(label.startswith("paper SHM") for label in labels)
    heights = sorted(round(p.get_height(), 3) for p in fig.axes[0].patches if p.get_height() > 0)
    assert 3.0 in heights and 1.5 in heights                                           # this run's ratios to ORI
    plt.close(fig)
