"""gfm.evaluate.complexity: Table 7 as measured here (the paper's figures are the report's)."""

from __future__ import annotations

import math

import pytest

from gfm.evaluate.complexity import complexity_table
from gfm.model.complexity import count_macs, count_parameters
from gfm.model.network import build_gfm


def test_complexity_table():
    table = complexity_table(["r18_lite", "r34"], latency_runs=0).set_index("backbone")
    assert list(table.columns) == ["parameters_m", "gmac", "latency_s", "device"]  # measured only
    model = build_gfm("r18_lite", "TT")
    lite = table.loc["r18_lite"]
    assert lite["parameters_m"] == round(count_parameters(model) / 1e6, 2)
    assert lite["gmac"] == round(count_macs(model, (800, 800)) / 1e9, 2)
    r34 = table.loc["r34"]
    assert r34["gmac"] == pytest.approx(132.28, abs=0.01)             # Table 7, GFM(r)
    assert math.isnan(r34["latency_s"]) and r34["device"].endswith("(not timed)")


def test_only_latency_backbones_are_timed():
    table = complexity_table(["r18_lite", "r34"], input_size=(32, 32), latency_runs=1, device="cpu",
                             latency_backbones=["r18_lite"]).set_index("backbone")
    assert table.loc["r18_lite", "latency_s"] > 0 and table.loc["r18_lite", "device"] == "cpu"
    assert math.isnan(table.loc["r34", "latency_s"])
