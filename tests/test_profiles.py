"""Profiles overlay params.yaml; the sample profile is exactly the committed params.yaml."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gfm.cli import main
from gfm.core import profiles

ROOT = Path(__file__).resolve().parents[1]


def _keys(tree, prefix=""):
    for key, value in tree.items():
        if isinstance(value, dict) and key != "experiments":
            yield from _keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_paper_and_sample_profiles_name_the_same_keys():
    paper = yaml.safe_load((ROOT / "profiles/paper.yaml").read_text())
    sample = yaml.safe_load((ROOT / "profiles/sample.yaml").read_text())
    assert set(_keys(paper)) == set(_keys(sample))


def test_sample_profile_is_the_committed_params(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    assert profiles.apply("sample", params) == {}
    assert params.read_text() == (ROOT / "params.yaml").read_text()


def test_paper_then_sample_round_trips(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    changed = profiles.apply("paper", params)
    loaded = yaml.safe_load(params.read_text())
    assert changed["bg20k.min_short_side"] == (360, 1080)
    assert loaded["train"]["lr"] == 1e-5
    assert loaded["compose"]["blur_kernels"] == [20, 30, 40, 50, 60]
    assert "ori-tt-d" in loaded["train"]["experiments"] and "ori-tt" not in loaded["train"]["experiments"]
    assert "# The experiment grid" in params.read_text(), "comments must survive"
    profiles.apply("sample", params)
    assert yaml.safe_load(params.read_text()) == yaml.safe_load((ROOT / "params.yaml").read_text())


def test_every_experiment_names_every_knob_the_train_stage_reads():
    for name in ("paper", "sample"):
        grid = yaml.safe_load((ROOT / f"profiles/{name}.yaml").read_text())["train"]["experiments"]
        for key, item in grid.items():
            assert set(item) == {"track", "data", "backbone", "rosta", "decoder", "ppm", "bridge", "epochs", "batch_size"}, key


def test_unknown_profile_and_unknown_key_are_clear_errors(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        profiles.apply("gpu", params)
    (tmp_path / "bad.yaml").write_text("bg20k: {min_shortside: 5}\n")
    with pytest.raises(ValueError, match="bg20k.min_shortside"):
        profiles.apply("bad", params, profiles_dir=tmp_path)
    assert params.read_text() == (ROOT / "params.yaml").read_text(), "a failed apply must not write"


def test_a_profile_giving_an_invalid_value_is_refused_before_writing(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    (tmp_path / "bad.yaml").write_text("compose: {p_blur: -0.5}\n")
    with pytest.raises(ValueError, match="compose.p_blur"):
        profiles.apply("bad", params, profiles_dir=tmp_path)
    assert params.read_text() == (ROOT / "params.yaml").read_text()


# --------------------------------------------------------------------------------------------
# gfm profile
# --------------------------------------------------------------------------------------------

def test_gfm_profile_help_lists_the_shipped_profiles(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["profile", "--help"])
    flat = " ".join(capsys.readouterr().out.split())
    shipped = sorted(path.stem for path in (ROOT / "profiles").glob("*.yaml"))
    assert exit_info.value.code == 0 and {"paper", "sample"} <= set(shipped)
    assert f"profile name: one of {', '.join(shipped)}" in flat


def test_building_the_parser_imports_no_yaml_library():
    """Every gfm start (gfm matte included) builds the parser: the profiles are listed only for their help."""
    code = ("import sys\n"
            "import gfm.cli\n"
            "gfm.cli.build_parser().parse_args(['matte', 'x.png', '--checkpoint', 'run', '--out', 'out'])\n"
            "print(sorted(m for m in sys.modules\n"
            "             if m.split('.')[0] in ('ruamel', 'yaml') or m == 'gfm.core.profiles'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
