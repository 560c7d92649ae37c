"""The paper's reported numbers, transcribed once in ``paper_numbers.yaml`` (the one loader).

The paper's Tables 1-7 are images; only the numbers its prose quotes (and three of its public
card) are available. Each entry of ``paper_numbers.yaml`` carries the table, dataset, track, row,
metric, value and the sentence it comes from (the file's header explains the fields).

* :func:`paper_numbers` -- the entries as a validated DataFrame (tables, the numbers table).
* :func:`paper_values` -- ``{id: value}`` (the claims' evidence and thresholds).
* :func:`paper_value` -- one value by id.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

__all__ = ["NUMBERS_FILE", "FIELDS", "paper_numbers", "paper_values", "paper_value"]

#: The C YAML parser when libyaml is available (10x faster), else the pure-Python one; both safe.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

NUMBERS_FILE = Path(__file__).with_name("paper_numbers.yaml")
#: The fields every entry must give (``note`` is optional).
FIELDS = ("id", "table", "dataset", "track", "method", "metric", "value", "source")


def paper_numbers(path: str | Path | None = None) -> pd.DataFrame:
    """The paper's reported numbers -> DataFrame ``id, table, dataset, track, method, metric, value,
    source, note`` (one row per number; ``table`` as text, ``note`` "" when absent).

    A missing field, a duplicate id or an unreadable file is a ValueError naming the file and entry.
    """
    path = Path(path) if path is not None else NUMBERS_FILE
    try:
        entries = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a readable paper-numbers YAML file ({error})") from error
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: expected a non-empty list of entries")
    for index, entry in enumerate(entries):
        missing = [key for key in FIELDS if not isinstance(entry, dict) or entry.get(key) in (None, "")]
        if missing:
            name = entry.get("id") if isinstance(entry, dict) else entry
            raise ValueError(f"{path}: entry {index} ({name!r}) lacks {missing}")
    frame = pd.DataFrame(entries, columns=[*FIELDS, "note"])
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        raise ValueError(f"{path}: duplicate ids {duplicated}")
    try:
        frame["value"] = frame["value"].astype(float)
    except ValueError as error:
        raise ValueError(f"{path}: a value is not a number ({error})") from error
    frame["table"] = frame["table"].astype(str)
    frame["note"] = frame["note"].fillna("")
    return frame


def paper_values(numbers: pd.DataFrame | str | Path | None = None) -> dict[str, float]:
    """``{id: value}`` of :func:`paper_numbers` (a DataFrame of it, or the file to read)."""
    frame = numbers if isinstance(numbers, pd.DataFrame) else paper_numbers(numbers)
    return dict(zip(frame["id"], frame["value"].astype(float)))


def paper_value(numbers: pd.DataFrame, id: str) -> float:
    """The value of entry ``id`` of :func:`paper_numbers` (KeyError if there is none)."""
    match = numbers.loc[numbers["id"] == id, "value"]
    if match.empty:
        raise KeyError(f"paper numbers: no entry {id!r}")
    return float(match.iloc[0])
