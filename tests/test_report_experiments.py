"""gfm.report.experiments: experiment configurations and names as the paper's rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from gfm.core.config import load_params
from gfm.report import experiments as ex

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EXPERIMENTS = {name: {"track": track, "backbone": "r18_lite", "rosta": "TT", "decoder": decoder,
                             "ppm": "five", "bridge": True, "epochs": 6}
                      for name, track, decoder in (("ori-tt", "ori", "two"), ("coco-tt", "coco", "two"),
                                                   ("ori-single", "ori", "single"))}


def test_experiment_names_map_to_the_papers_rows():
    assert ex.experiment_label(ex.parse_experiment("ori-noppm-d")) == ("ORI", "GFM-TT(d) w/o PPM")
    assert ex.experiment_label(ex.parse_experiment("rssn-blur-r")) == ("COMP-BG20K w/ blur", "GFM-TT(r)")
    assert ex.experiment_label(ex.parse_experiment("ori-tt-r101")) == ("ORI", "GFM-TT(r†)")
    assert ex.experiment_label(ex.parse_experiment("ori-single")) == ("ORI", "GFM-TT SINGLE")
    assert ex.experiment_label(SAMPLE_EXPERIMENTS["coco-tt"]) == ("COMP-COCO", "GFM-TT(r18-lite)")
    with pytest.raises(ValueError, match="ori-xyz"):
        ex.parse_experiment("ori-xyz")
    with pytest.raises(ValueError, match="starting with"):
        ex.parse_experiment("foo-tt")


def test_paper_profile_names_agree_with_their_configurations():
    planned = ex.load_experiments(ROOT / "profiles" / "paper.yaml")
    assert len(planned) >= 15
    for name, config in planned.items():
        assert ex.experiment_label(ex.parse_experiment(name)) == ex.experiment_label(config), name


def test_normalise_is_one_format():
    base = ex.normalise({})
    assert base == {**ex.BASE_CONFIG, "backbone": None}
    odd = ex.normalise({"track": "ORI", "rosta": "ft", "decoder": "Two", "ppm": "FIVE", "bridge": "false",
                        "backbone": "r34", "epochs": 3, "data": "x"})
    assert odd == {"track": "ori", "rosta": "FT", "decoder": "two", "ppm": "five", "bridge": False, "backbone": "r34"}
    assert ex.normalise({"backbone": "?"})["backbone"] is None
    assert ex.parse_experiment("ori-tt") == base                   # a name without backbone: unknown backbone


def test_row_group_drops_the_backbone():
    assert ex.row_group("GFM-TT(d) w/o PPM") == "GFM-TT w/o PPM"
    assert ex.row_group("GFM-RIM(r18-lite)") == "GFM-RIM"
    assert ex.row_group("SHM") == "SHM" and ex.row_group("GFM (best)") == "GFM (best)"


def test_from_params_reads_the_grid():
    params = load_params(ROOT / "params.yaml")
    grid = ex.from_params(params)
    assert list(grid) == list(params.train.experiments)
    for name, config in grid.items():
        item = params.train.experiments[name]
        assert config == ex.normalise({k: getattr(item, k) for k in ex.CONFIG_KEYS}), name
    with pytest.raises(ValueError, match="not.yaml"):
        ex.load_experiments(ROOT / "not.yaml")
