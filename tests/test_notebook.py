from pathlib import Path

import pytest

from gfm.core import notebook

ROOT = Path(__file__).resolve().parents[1]


def test_setup_moves_from_notebooks_folder_to_project_root(monkeypatch):
    monkeypatch.chdir(ROOT / "notebooks")
    assert notebook.setup() == ROOT
    assert Path.cwd() == ROOT


def test_outside_the_project_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dvc.yaml"):
        notebook.project_root(tmp_path)
