"""gfm.data.validate: every image/alpha pair of a split checked (names, sizes, readability, single-channel
8-bit mattes) before anything changes; unambiguous colour mattes converted, ambiguous ones refused."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from gfm.core.io import ImageError, read_alpha
from gfm.data.errors import DataError
from gfm.data.validate import validate_pairs

from httpserver import png, split_tree, tree, write_file


def test_validate_pairs_accepts_a_clean_split(tmp_path):
    report = validate_pairs(split_tree(tmp_path / "train", trimap=True))
    assert report["pairs"] == 3 and report["warnings"] == [] and report["sizes"] == [[32, 24]] * 3


@pytest.mark.parametrize("problem, pattern", [
    ("orphan-image", r"s0\.jpg: no mask"),
    ("orphan-mask", r"x9\.png: mask without an image"),
    ("size", r"s1\.png: mask is 16x8, its image s1\.jpg is 32x24"),
    ("unreadable", r"s2\.png: not a readable image"),
    ("duplicate", r"s0\.png: same name as s0\.jpg"),
    ("trimap-missing", r"s1\.jpg: no trimap"),
    ("rgb-differs", r"s2\.png: mask is RGB and its channels differ at \d+ of 768 pixels"),
])
def test_validate_pairs_names_the_file_and_problem(tmp_path, problem, pattern):
    split = split_tree(tmp_path / "validation", trimap=True)
    if problem == "orphan-image":
        (split / "mask" / "s0.png").unlink()
    elif problem == "orphan-mask":
        write_file(split / "mask" / "x9.png", png(np.zeros((24, 32), np.uint8)))
    elif problem == "size":
        write_file(split / "mask" / "s1.png", png(np.zeros((8, 16), np.uint8)))
    elif problem == "unreadable":
        write_file(split / "mask" / "s2.png", b"not a png")
    elif problem == "duplicate":
        write_file(split / "original" / "s0.png", png(np.zeros((24, 32, 3), np.uint8)))
    elif problem == "trimap-missing":
        (split / "trimap" / "s1.png").unlink()
    elif problem == "rgb-differs":
        alpha = read_alpha(split / "mask" / "s2.png")
        write_file(split / "mask" / "s2.png", png(np.dstack([np.zeros_like(alpha)] * 2 + [alpha])))  # red only
    before = tree(split)
    with pytest.raises(DataError, match=pattern):
        validate_pairs(split, strict=True)
    assert tree(split) == before  # strict: nothing changed
    report = validate_pairs(split, strict=False)
    assert report["dropped"] == 1 and report["pairs"] == (3 if problem in ("orphan-mask", "duplicate") else 2)
    assert any(w.startswith("dropped:") for w in report["warnings"])
    names = [p.stem for p in (split / "original").iterdir()]
    assert sorted(names) == sorted(set(names)) and {p.stem for p in (split / "mask").iterdir()} == set(names)
    assert validate_pairs(split, strict=True)["warnings"] == []  # what is left is clean


def test_rgba_rgb_and_16bit_alphas_are_converted_with_a_warning(tmp_path):
    split = split_tree(tmp_path / "train", n=3)
    alpha = read_alpha(split / "mask" / "s0.png")
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 3] = alpha
    write_file(split / "mask" / "s0.png", png(rgba))
    write_file(split / "mask" / "s1.png", png(np.repeat(alpha[..., None], 3, axis=2)))
    (split / "mask" / "s2.png").unlink()
    _, buf = cv2.imencode(".tif", alpha.astype(np.uint16) * 257)
    write_file(split / "mask" / "s2.tif", buf.tobytes())
    report = validate_pairs(split)
    assert report["converted"] == 3 and report["pairs"] == 3
    assert any("RGBA" in w for w in report["warnings"]) and any("16-bit" in w for w in report["warnings"])
    assert sorted(p.name for p in (split / "mask").iterdir()) == ["s0.png", "s1.png", "s2.png"]
    for name in ("s0", "s1", "s2"):
        stored = cv2.imread(str(split / "mask" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        assert stored.dtype == np.uint8 and stored.ndim == 2
        np.testing.assert_array_equal(stored, alpha)


def test_a_matte_only_in_the_red_channel_is_refused_not_zeroed(tmp_path):
    """OpenCV's first channel is blue: read_alpha alone would turn this matte into zeros."""
    split = split_tree(tmp_path / "train", n=2)
    alpha = read_alpha(split / "mask" / "s0.png")
    path = write_file(split / "mask" / "s0.png", png(np.dstack([np.zeros_like(alpha)] * 2 + [alpha])))
    with pytest.raises(DataError, match=rf"{path}: mask is RGB and its channels differ at {np.count_nonzero(alpha)} "
                                        rf"of 768 pixels \(channel ranges R \[0, 255\], G \[0, 0\], B \[0, 0\]\)"):
        validate_pairs(split)
    with pytest.raises(ImageError, match=rf"{path}: an RGB matte whose channels differ"):
        read_alpha(path)  # the trap (OpenCV's first channel is the empty blue one) is refused, not zeroed


def test_an_rgba_matte_with_a_uniform_alpha_over_varying_colour_is_refused(tmp_path):
    split = split_tree(tmp_path / "train", n=2)
    alpha = read_alpha(split / "mask" / "s1.png")
    path = write_file(split / "mask" / "s1.png", png(np.dstack([alpha] * 3 + [np.full_like(alpha, 255)])))
    with pytest.raises(DataError, match=rf"{path}: mask is RGBA with a uniform alpha channel \(255 everywhere\)"):
        validate_pairs(split)


def test_strict_validation_changes_nothing_before_it_raises(tmp_path):
    split = split_tree(tmp_path / "train", n=3)
    alpha = read_alpha(split / "mask" / "s0.png")
    rgba = np.zeros((24, 32, 4), np.uint8)
    rgba[..., 3] = alpha
    write_file(split / "mask" / "s0.png", png(rgba))  # convertible
    (split / "mask" / "s2.png").unlink()  # a problem found after it
    before = tree(split)
    with pytest.raises(DataError, match=r"(?s)1 problem\(s\) \(strict=True; nothing was changed\).*s2\.jpg: no mask"):
        validate_pairs(split, strict=True)
    assert tree(split) == before
    report = validate_pairs(split, strict=False)  # non-strict: the bad sample dropped, the good one converted
    assert (report["pairs"], report["converted"], report["dropped"]) == (2, 1, 1)
    assert read_alpha(split / "mask" / "s0.png").ndim == 2 and not (split / "original" / "s2.jpg").exists()
    write_file(split / "mask" / "s1.png", png(rgba))
    before = tree(split)
    report = validate_pairs(split, convert=False)  # only a warning, the file kept
    assert report["converted"] == 0 and tree(split) == before
    assert report["warnings"] == [(f"{split / 'mask' / 's1.png'}: mask is not single-channel 8-bit "
                                   f"(RGBA: alpha channel used)")]


def test_a_conversion_killed_before_the_original_was_deleted_is_completed_by_the_next_run(tmp_path, monkeypatch):
    """A conversion writes the PNG, then deletes the original: a kill between the two leaves both files."""
    split = split_tree(tmp_path / "train", n=2)
    alpha = read_alpha(split / "mask" / "s1.png")
    (split / "mask" / "s1.png").unlink()
    _, buf = cv2.imencode(".tif", alpha.astype(np.uint16) * 257)
    tif = write_file(split / "mask" / "s1.tif", buf.tobytes())

    unlink = Path.unlink

    def killed(path, *args, **kwargs):
        if path == tif:
            raise KeyboardInterrupt  # the run dies here
        return unlink(path, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", killed)
    with pytest.raises(KeyboardInterrupt):
        validate_pairs(split)
    monkeypatch.undo()
    assert tif.exists() and (split / "mask" / "s1.png").exists()  # two files, one stem

    report = validate_pairs(split, strict=True)
    assert report["pairs"] == 2 and report["dropped"] == 0 and not tif.exists()
    assert report["warnings"] == [f"{tif}: deleted, s1.png is its conversion (left by an interrupted run)"]
    np.testing.assert_array_equal(read_alpha(split / "mask" / "s1.png"), alpha)

    _, other = cv2.imencode(".tif", np.zeros_like(alpha, np.uint16))  # a twin with another matte: still a problem
    write_file(split / "mask" / "s0.tif", other.tobytes())
    with pytest.raises(DataError, match=r"s0\.tif: same name as s0\.png"):
        validate_pairs(split, strict=True)
