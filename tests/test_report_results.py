"""gfm.report.results: a finished run saved as a committed results folder, read back, and set beside another."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from gfm.core.io import write_bytes, write_json, write_text
from gfm.report import results
from test_report_inputs import PNG_1PX

ROOT = Path(__file__).resolve().parents[1]
STARTED = "2026-12-02T04:00:00+00:00"


def _claim(verdict, diff=None, ci=None, kind="paper"):
    return {"kind": kind, "verdict": verdict, "diff": diff, "ci95": ci}


FINDINGS = {"claims": {"two_decoders": _claim("reproduced", -2.0, [-3.0, -1.0]),
                       "ppm": _claim("inconclusive", 0.1, [-1.0, 1.2]), "r2b": _claim("not_run")},
            "summary": {"reproduced": 1, "contradicted": 0, "inconclusive": 1, "not_run": 1}}


def finished_project(root: Path) -> Path:
    """A pipeline checkout after ``dvc repro`` (the files a results folder keeps), with the repo's params.yaml."""
    root.mkdir(parents=True)
    shutil.copy(ROOT / "params.yaml", root / "params.yaml")
    write_text(root / "dvc.lock", "schema: '2.0'\nstages: {}\n")
    write_json(root / "metrics" / "findings.json", FINDINGS)
    write_json(root / "metrics" / "headline.json", {"verdicts": FINDINGS["summary"]})
    machine = {"cpu_flags": ["avx2"], "native_bf16": False, "cores": 2, "torch": "2.14.1", "python": "3.11.7"}
    write_json(root / "metrics" / "run" / "03_rssn.json",      # before this repro: up to date, not re-run
               {"cpu": "Old CPU", **machine, "commit": "abc", "finished_at": "2026-12-01T10:00:00+00:00", "wall_s": 9.0})
    write_json(root / "metrics" / "run" / "04_train_ori-tt.json",
               {"cpu": "AMD EPYC", **machine, "commit": "def", "finished_at": "2026-12-02T05:00:00+00:00",
                "wall_s": 300.0})
    write_json(root / "metrics" / "run" / "06_paper.json",
               {"cpu": "AMD EPYC", **machine, "commit": "def", "finished_at": "2026-12-02T05:10:00+00:00",
                "wall_s": 12.0})
    write_json(root / "metrics" / "train" / "ori-tt.json", {"precision": "fp32"})
    write_json(root / "metrics" / "train" / "coco-tt.json", {"precision": "bf16"})
    write_text(root / "reports" / "paper" / "table4.csv",
               "track,method,experiment,seeds,sad_paper_am2k,sad,run_note\n"
               "ORI,GFM-TT(d) w/o PPM,,,12.0,,not run in this profile\nORI,GFM-TT(r18-slim),ori-tt,3,,17.7,\n")
    write_bytes(root / "reports" / "paper" / "forest.png", PNG_1PX)
    return root


def test_save_then_load_keeps_the_run_and_says_what_ran_where(tmp_path):
    project = finished_project(tmp_path / "project")
    out = results.save(project, tmp_path / "results" / "study", wall_s=3600.0, started_at=STARTED,
                       command="gfm profile study && dvc repro")
    run = results.load(out)
    assert run.name == "study" and run.findings == FINDINGS
    info = run.run
    assert info["profile"] == "sample" and info["wall_s"] == 3600.0 and info["commit"] is None   # not a git checkout
    assert info["machine"]["cpu"] == "AMD EPYC"                   # this repro's stages, not the older one's
    assert info["stages"]["03_rssn"]["this_repro"] is False and info["stages"]["06_paper"]["this_repro"] is True
    assert info["finished_at"] == "2026-12-02T05:10:00+00:00"
    assert info["precision"]["fp32"] == ["ori-tt"] and info["precision"]["bf16"] == ["coco-tt"]
    assert set(info["precision"]) - {"fp32", "bf16"} == {"not trained"}   # the sample's other arms have no metrics
    for name in ("params.yaml", "dvc.lock", "metrics/headline.json", "metrics/train/ori-tt.json",
                 "reports/paper/table4.csv", "reports/paper/forest.png"):
        assert (out / name).read_bytes() == (project / name).read_bytes(), name
    rows = run.run_rows("table4")
    assert list(rows["experiment"]) == ["ori-tt"] and "sad_paper_am2k" not in rows
    assert run.figure("forest") == out / "reports" / "paper" / "forest.png" and run.figure("nope") is None
    text = run.describe()
    assert "profile sample" in text and "AMD EPYC" in text and "60.0 min" in text and "fp32 (1 experiments)" in text
    assert results.discover(tmp_path / "results")[0].run == info
    assert results.discover(tmp_path / "absent") == []


def test_commit_is_dirty_only_when_code_changed(tmp_path):
    project = finished_project(tmp_path / "project")
    write_text(project / "gfm.py", "x = 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(git + ["init", "-q"], cwd=project, check=True)
    subprocess.run(git + ["add", "-A"], cwd=project, check=True)
    subprocess.run(git + ["commit", "-qm", "x"], cwd=project, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    write_text(project / "params.yaml", (project / "params.yaml").read_text() + "\n")   # a profile applied
    write_json(project / "metrics" / "headline.json", {"changed": 1})                   # the repro's outputs
    assert results.load(results.save(project, tmp_path / "a")).run["commit"] == head
    write_text(project / "gfm.py", "x = 2\n")
    assert results.load(results.save(project, tmp_path / "b")).run["commit"] == head + "+dirty"


def test_save_refuses_an_unfinished_project_and_leaves_nothing(tmp_path):
    project = finished_project(tmp_path / "project")
    (project / "metrics" / "findings.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"metrics/findings\.json: missing; run the pipeline"):
        results.save(project, tmp_path / "results" / "study")
    assert not (tmp_path / "results").exists()


def test_save_refuses_absolute_paths(tmp_path):
    project = finished_project(tmp_path / "project")
    text = (project / "params.yaml").read_text().replace("  out: reports\n", f"  out: {tmp_path / 'reports'}\n")
    write_text(project / "params.yaml", text)
    with pytest.raises(ValueError, match=r"params\.yaml: a results folder mirrors the project's relative paths"):
        results.save(project, tmp_path / "out")


@pytest.mark.parametrize("problem, match", [
    ("no_run", r"run\.json: missing; not a results folder"),
    ("bad_json", r"run\.json: not valid JSON"),
    ("no_files", r"run\.json: no 'files' with 'findings' and 'paper'"),
    ("no_findings", r"metrics/findings\.json: missing"),
    ("no_claims", r"metrics/findings\.json: no 'claims' mapping"),
])
def test_load_names_the_bad_file(tmp_path, problem, match):
    folder = results.save(finished_project(tmp_path / "project"), tmp_path / "results" / "study")
    run_file = folder / results.RUN_FILE
    if problem == "no_run":
        run_file.unlink()
    elif problem == "bad_json":
        write_text(run_file, "{")
    elif problem == "no_files":
        write_json(run_file, {"profile": "study"})
    elif problem == "no_findings":
        (folder / "metrics" / "findings.json").unlink()
    else:
        write_json(folder / "metrics" / "findings.json", {"summary": {}})
    with pytest.raises(ValueError, match=match):
        results.load(folder)
    with pytest.raises(ValueError, match=match):
        results.discover(tmp_path / "results")           # a bad folder is an error, not silently skipped


def test_comparison_table_labels_and_changes():
    second = {"claims": {"two_decoders": _claim("contradicted", 1.0, [0.5, 1.5]),
                         "ppm": _claim("reproduced", -1.0, [-2.0, -0.5]), "r2b": _claim("not_run")}}
    table = results.comparison_table(FINDINGS, second, ("this run (sample)", "study (committed)"))
    assert list(table.columns) == ["claim", "kind", "this run (sample)", "study (committed)", "change"]
    assert list(table["change"]) == ["flipped", "from inconclusive", "same"]
    assert table.loc[0, "this run (sample)"] == "reproduced -2 [-3, -1]"
    assert table.loc[2, "study (committed)"] == "not_run"
    assert isinstance(table, pd.DataFrame)


def test_cli_saves_and_describes(tmp_path, capsys):
    project = finished_project(tmp_path / "project")
    assert results.main([str(project), str(tmp_path / "r" / "study"), "--wall-s", "120", "--started-at", STARTED]) == 0
    assert "2.0 min" in capsys.readouterr().out
    assert json.loads((tmp_path / "r" / "study" / "run.json").read_text())["command"] == "dvc repro"
