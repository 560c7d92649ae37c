"""gfm.core.io: atomic files and folders -- nothing half-written is ever visible."""

import os

import pytest

from gfm.core.io import atomic_dir, atomic_path, replace_dir


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_path_renames_only_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as tmp:
        tmp.write_text("done")
        assert not target.exists()
    assert target.read_text() == "done"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "done" and _listing(target.parent) == ["out.txt"]


def test_atomic_dir_replaces_an_existing_folder_in_one_step(tmp_path):
    dest = tmp_path / "datasets"
    (dest / "old").mkdir(parents=True)
    with atomic_dir(dest) as tmp:
        (tmp / "new").mkdir()
        (tmp / "new" / "a.txt").write_text("a")
        assert _listing(dest) == ["old"]  # readers see the previous folder until the end
    assert _listing(dest) == ["new"] and (dest / "new" / "a.txt").read_text() == "a"
    assert _listing(tmp_path) == ["datasets"]  # neither the build folder nor the old one is left
    umask = os.umask(0)
    os.umask(umask)
    assert dest.stat().st_mode & 0o777 == 0o777 & ~umask


def test_atomic_dir_keeps_the_previous_folder_when_the_build_fails(tmp_path):
    dest = tmp_path / "composites"
    dest.mkdir()
    (dest / "keep.txt").write_text("previous")
    with pytest.raises(ValueError, match="bad input"), atomic_dir(dest) as tmp:
        (tmp / "partial.txt").write_text("half")
        raise ValueError("bad input")
    assert _listing(dest) == ["keep.txt"] and _listing(tmp_path) == ["composites"]


def test_replace_dir_restores_the_old_folder_if_the_rename_fails(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "x").write_text("1")
    with pytest.raises(FileNotFoundError):
        replace_dir(tmp_path / "missing", dest)
    assert (dest / "x").read_text() == "1" and _listing(tmp_path) == ["out"]
