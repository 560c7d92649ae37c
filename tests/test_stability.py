"""benchmarks/stability.py: the side-by-side comparison of two verdict tables and its acceptance rule."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("stability", ROOT / "benchmarks" / "stability.py")
stability = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stability)


def _claim(verdict, diff=None, ci=None, kind="paper"):
    return {"kind": kind, "verdict": verdict, "diff": diff, "ci95": ci}


FIRST = {"claims": {"a": _claim("reproduced", -2.0, [-3.0, -1.0]), "b": _claim("contradicted", 1.0, [0.5, 1.5]),
                    "c": _claim("inconclusive", 0.1, [-1.0, 1.2]), "d": _claim("reproduced", -1.0, [-2.0, -0.1]),
                    "e": _claim("not_run")}}


def test_changes_are_classified_and_counted():
    second = {"claims": {"a": _claim("reproduced", -1.5, [-2.0, -1.0]), "b": _claim("reproduced", -1.0, [-2, -0.5]),
                         "c": _claim("contradicted", 1.0, [0.2, 2.0]), "d": _claim("inconclusive", -0.4, [-1, 0.3]),
                         "e": _claim("not_run"), "f": _claim("reproduced", -1.0, [-2.0, -0.5], kind="project")}}
    rows, counts = stability.compare(FIRST, second)
    change = {r["claim"]: r["change"] for r in rows}
    assert change == {"a": "same", "b": "flipped", "c": "from_inconclusive", "d": "to_inconclusive", "e": "same",
                      "f": "other"}
    assert counts == {"same": 2, "flipped": 1, "to_inconclusive": 1, "from_inconclusive": 1, "other": 1}
    assert next(r for r in rows if r["claim"] == "f")["first"] == "absent"
    text = stability.render(rows, counts, ("seeds [0, 1, 2]", "seeds [3, 4, 5]"))
    assert "reproduced -2 [-3, -1]" in text and "flipped: 1" in text


def test_compare_mode_exit_status_follows_the_acceptance_rule(tmp_path, capsys):
    same, flipped = tmp_path / "same.json", tmp_path / "flipped.json"
    same.write_text(json.dumps(FIRST))
    flipped.write_text(json.dumps({"claims": {**FIRST["claims"], "a": _claim("contradicted", 1.0, [0.5, 2.0])}}))
    out = tmp_path / "out" / "stability.json"
    assert stability.main(["--compare", str(same), str(same), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["counts"]["same"] == 5
    assert stability.main(["--compare", str(same), str(flipped)]) == 1
    assert "flipped" in capsys.readouterr().out
