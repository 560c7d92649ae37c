"""The study profile (issue 11, part 4): every arm the world hosts, the sample's grid kept as it is."""

import shutil
from pathlib import Path

import yaml

from gfm.core import profiles
from gfm.core.config import load_params
from gfm.report.claims import default_claims
from gfm.report.experiments import from_params
from gfm.report.judge import resolve_arms

ROOT = Path(__file__).resolve().parents[1]
NOT_HOSTED = {"r2b"}   # needs the r34 / r34_2b pair (profiles/study.yaml says why)


def _study(tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(ROOT / "params.yaml", params)
    changed = profiles.apply("study", params)
    return params, changed


def test_study_resolves_every_paper_claim_but_r2b(tmp_path):
    params, _ = _study(tmp_path)
    grid = from_params(load_params(params))
    unresolved = {claim.id for claim in default_claims() if claim.kind == "paper"
                  and resolve_arms(claim, grid) is None}
    assert unresolved == NOT_HOSTED
    sample = from_params(load_params(ROOT / "params.yaml"))
    assert {claim.id for claim in default_claims() if claim.kind == "paper"
            and resolve_arms(claim, sample) is None} > NOT_HOSTED   # the study adds arms the sample lacks


def test_study_keeps_the_sample_stages_unchanged(tmp_path):
    """The sample's experiments and every knob their train@ stages read are untouched, so DVC finds
    those stages up to date and the study trains only its new arms."""
    params, changed = _study(tmp_path)
    assert set(changed) == {"profile", "compose.routes", "train.experiments", "evaluate.experiments"}
    before = yaml.safe_load((ROOT / "params.yaml").read_text())
    after = yaml.safe_load(params.read_text())
    for name, config in before["train"]["experiments"].items():
        assert after["train"]["experiments"][name] == config
    assert after["train"]["seeds"] == before["train"]["seeds"]
    assert after["compose"]["routes"][:len(before["compose"]["routes"])] == before["compose"]["routes"]
    assert set(after["evaluate"]["experiments"]) == set(after["train"]["experiments"])


def test_study_then_sample_round_trips(tmp_path):
    params, _ = _study(tmp_path)
    profiles.apply("sample", params)
    assert yaml.safe_load(params.read_text()) == yaml.safe_load((ROOT / "params.yaml").read_text())
