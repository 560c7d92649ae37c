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


def test_source_notebooks_hold_no_outputs():
    """Stage notebooks are dvc deps: outputs saved into them would mark their stage changed."""
    import json

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        dirty = [i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                 and (c.get("outputs") or c.get("execution_count") is not None)]
        assert not dirty, f"{path.name}: cells {dirty} hold outputs; save from JupyterLab via `make lab`"
        assert "widgets" not in nb.get("metadata", {}), f"{path.name}: widget state saved"


def test_pre_save_hook_strips_only_stage_notebooks(tmp_path):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    (tmp_path / "gfm").mkdir()
    (tmp_path / "notebooks").mkdir()

    class Manager:
        root_dir = str(tmp_path)

    def model():
        cell = {"cell_type": "code", "source": "1", "metadata": {}, "execution_count": 3,
                "outputs": [{"output_type": "execute_result", "data": {"text/plain": "1"}}]}
        return {"type": "notebook", "content": {"cells": [cell], "metadata": {"widgets": {}}}}

    stage, other = model(), model()
    notebook.pre_save_hook(stage, "notebooks/03_rssn.ipynb", Manager())
    notebook.pre_save_hook(other, "scratch/mine.ipynb", Manager())
    assert stage["content"]["cells"][0]["outputs"] == [] and stage["content"]["cells"][0]["execution_count"] is None
    assert "widgets" not in stage["content"]["metadata"]
    assert other["content"]["cells"][0]["outputs"], "notebooks outside notebooks/ keep their outputs"


def test_jupyter_config_installs_the_hook():
    text = (ROOT / ".jupyter" / "jupyter_server_config.py").read_text()
    assert "pre_save_hook" in text
    makefile = (ROOT / "Makefile").read_text()
    assert ".jupyter/jupyter_server_config.py" in makefile, "make setup must install the Jupyter config"
