"""gfm.report.numbers: the transcribed numbers, checked against the paper's text (the one loader)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from gfm.core.io import write_text
from gfm.report import numbers as nb

ROOT = Path(__file__).resolve().parents[1]
PAPER_DIR = ROOT.parent / "shared" / "paper"
PAPER_TEXT = PAPER_DIR / "gfm_paper_text.txt"
PAPER_CARD = PAPER_DIR / "gfm_paper_card.txt"


@pytest.fixture(scope="module")
def numbers():
    return nb.paper_numbers()


def test_paper_numbers_load_with_table_source_and_value(numbers):
    assert len(numbers) >= 80
    assert numbers["id"].is_unique
    for column in ("table", "source", "method", "metric", "dataset", "track"):
        assert (numbers[column].astype(str).str.len() > 0).all(), column
    assert np.isfinite(numbers["value"]).all()
    assert set(numbers["table"]) >= {"1", "2", "3", "4", "5", "6", "7"}
    assert nb.paper_value(numbers, "t1_coco_am2k_shm_sad") == pytest.approx(182.70)
    assert nb.paper_value(numbers, "t4_single_r_sad") == pytest.approx(15.50)
    assert nb.paper_value(numbers, "t7_gfm_r_gmac") == pytest.approx(132.28)
    with pytest.raises(KeyError):
        nb.paper_value(numbers, "no-such-id")


def test_paper_values_is_the_same_file_as_a_mapping(numbers):
    values = nb.paper_values()
    assert values == nb.paper_values(numbers) and len(values) == len(numbers)
    assert values["t1_coco_am2k_gfm_d_sad"] == pytest.approx(46.16)
    assert all(isinstance(v, float) for v in values.values())


def test_paper_numbers_rejects_an_entry_without_source(tmp_path):
    path = write_text(tmp_path / "n.yaml", "- {id: a, table: '1', dataset: AM-2k, track: ORI, method: SHM, "
                                            "metric: sad, value: 1.0}\n")
    with pytest.raises(ValueError, match="source"):
        nb.paper_numbers(path)


def test_paper_numbers_rejects_duplicates_and_bad_files(tmp_path):
    entry = "- {id: a, table: '1', dataset: AM-2k, track: ORI, method: SHM, metric: sad, value: 1.0, source: s}\n"
    with pytest.raises(ValueError, match=r"duplicate ids \['a'\]"):
        nb.paper_numbers(write_text(tmp_path / "d.yaml", entry * 2))
    with pytest.raises(ValueError, match="non-empty list"):
        nb.paper_numbers(write_text(tmp_path / "e.yaml", "{}\n"))
    with pytest.raises(ValueError, match="missing.yaml"):
        nb.paper_numbers(tmp_path / "missing.yaml")
    with pytest.raises(ValueError, match="not a number"):
        nb.paper_numbers(write_text(tmp_path / "v.yaml", entry.replace("value: 1.0", "value: ten")))


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason=f"{PAPER_DIR} not present")
def test_every_prose_number_is_in_the_paper_text(numbers):
    text = PAPER_TEXT.read_text(encoding="utf-8")
    card = PAPER_CARD.read_text(encoding="utf-8") if PAPER_CARD.is_file() else ""
    for _, entry in numbers.iterrows():
        haystack = card if entry["source"].startswith("paper card") else text
        forms = {f"{entry['value']:.2f}", f"{entry['value']:.4f}", f"{entry['value']:g}"}
        found = [f for f in forms if re.search(rf"(?<![\d.]){re.escape(f)}(?![\d])", haystack)]
        assert found, f"{entry['id']}: {entry['value']} not found in {entry['source'][:40]}"


@pytest.mark.skipif(not PAPER_TEXT.is_file(), reason=f"{PAPER_DIR} not present")
@pytest.mark.parametrize("quote", [
    "46.16, 30.05, and 33.79 v.s. 182.70 for AM-2k, 61.69, 34.58, and 33.90 v.s. 168.75 for PM-10k",
    "from 134.43 to 33.52 for AM-2k and 123.62 to 11.55 for PM-10k",
    "from 25.19 to 19.19 and 21.54 to 18.15 for GFM(d), from 16.44 to 15.88 and 20.29 to 13.84 for GFM(r)",
    "8.24 v.s. 10.26 for AM-2k, 7.70 v.s. 8.53 for PM-10k in the transition area",
    "17.81 for AM-2k and 16.64 for PM-10k",
    "SAD increases from 10.26 to 13.79 for GFM-TT(d) and 10.89 to 15.50 for GFM-TT(r)",
    "from 10.26 to 10.86 for GFM-TT(d) and 10.89 to 11.90",
    "from 10.26 to 11.27 for GFM-TT(d) and 10.89 to 11.29",
    "SAD 10.62 to 11.28, 11.76 and 12.26",
    "0.0025 to 0.0026",
    "7.59 to 6.82, 6.78 to 6.00 for DIM",
    "132.28 GMacs",
    "0.2085s and 0.1734s",
])
def test_spot_checks_against_the_paper_text(quote, numbers):
    text = " ".join(PAPER_TEXT.read_text(encoding="utf-8").split())
    assert quote in text
    for value in re.findall(r"\d+\.\d+", quote):
        assert np.isclose(numbers["value"], float(value)).any(), f"{value} of the quote is not transcribed"
