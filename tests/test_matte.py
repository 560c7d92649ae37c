"""``gfm matte`` (gfm.matte): outputs, per-file failures, exit codes, official checkpoints."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from gfm.core.io import write_image
from gfm.matte import collect_inputs, main_matte
from gfm.model.network import build_gfm


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A training run folder in the format gfm.train.loop writes (model.pt + train_summary.json)."""
    folder = tmp_path_factory.mktemp("models") / "tiny-tt"
    folder.mkdir()
    torch.manual_seed(0)
    torch.save(build_gfm("r18_lite", "TT").state_dict(), folder / "model.pt")
    config = {"experiment": "tiny-tt", "backbone": "r18_lite", "rosta": "TT", "decoder": "two", "ppm": "five",
              "bridge": True}
    (folder / "train_summary.json").write_text(json.dumps({"config": config}))
    return folder


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    rng = np.random.default_rng(0)
    write_image(folder / "cat.jpg", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    write_image(folder / "dog.png", rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return folder


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_matte_folder_with_a_corrupt_file(run_dir, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = main_matte([str(inputs), "--checkpoint", str(run_dir), "--out", str(out), "--device", "cpu",
                       "--d1", "1", "--d2", "1"])
    assert code == 0
    for stem, (h, w) in (("cat", (70, 90)), ("dog", (64, 48))):
        alpha = _read(out / f"{stem}_alpha.png")
        cutout = _read(out / f"{stem}_cutout.png")
        assert alpha.shape == (h, w) and alpha.dtype == np.uint8       # 8-bit grey
        assert cutout.shape == (h, w, 4) and cutout.dtype == np.uint8  # RGBA
        np.testing.assert_array_equal(cutout[..., 3], alpha)
    assert "broken.jpg" in capsys.readouterr().err
    assert not (out / "broken_alpha.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_cutout_keeps_image_colours(run_dir, tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", image)
    assert main_matte([str(tmp_path / "x.png"), "--checkpoint", str(run_dir / "model.pt"), "--out",
                       str(tmp_path / "o"), "--device", "cpu", "--strategy", "resize", "--d", "1", "--quiet"]) == 0
    cutout = cv2.cvtColor(_read(tmp_path / "o" / "x_cutout.png"), cv2.COLOR_BGRA2RGBA)
    np.testing.assert_array_equal(cutout[..., :3], image)


def test_all_inputs_fail_exit_1(run_dir, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"")
    assert main_matte([str(tmp_path / "bad.png"), "--checkpoint", str(run_dir), "--out", str(tmp_path / "o"),
                       "--device", "cpu"]) == 1
    assert "bad.png" in capsys.readouterr().err


def test_usage_errors_exit_2(run_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:   # argparse: --checkpoint is required
        main_matte([str(tmp_path)])
    assert exit_info.value.code == 2
    (tmp_path / "empty").mkdir()
    assert main_matte([str(tmp_path / "empty"), "--checkpoint", str(run_dir), "--out", str(tmp_path / "o")]) == 2
    write_image(tmp_path / "x.png", np.zeros((32, 32, 3), np.uint8))
    assert main_matte([str(tmp_path / "x.png"), "--checkpoint", str(tmp_path / "nope.pt"),
                       "--out", str(tmp_path / "o")]) == 2
    assert "nope.pt" in capsys.readouterr().err


def test_official_checkpoint(tmp_path):
    torch.manual_seed(2)
    model = build_gfm("r18_lite", "FT")
    # official layout: the same module names, saved from nn.DataParallel ("module." prefix)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "gfm_r18_ft.pth")
    write_image(tmp_path / "in" / "a.png", np.random.default_rng(3).integers(0, 256, (96, 64, 3), dtype=np.uint8))
    code = main_matte([str(tmp_path / "in"), "--checkpoint", str(tmp_path / "gfm_r18_ft.pth"),
                       "--official", "r18_lite-ft", "--out", str(tmp_path / "o"), "--device", "cpu", "--quiet"])
    assert code == 0
    assert _read(tmp_path / "o" / "a_alpha.png").shape == (96, 64)
    # without --official the bare state dict is a usage error that names the fix
    assert main_matte([str(tmp_path / "in"), "--checkpoint", str(tmp_path / "gfm_r18_ft.pth"),
                       "--out", str(tmp_path / "o2"), "--device", "cpu"]) == 2


def test_collect_inputs(tmp_path):
    write_image(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    files, missing = collect_inputs([tmp_path, tmp_path / "b.png", tmp_path / "gone.png"])
    assert [p.name for p in files] == ["a.jpg", "b.png"]
    assert [p.name for p in missing] == ["gone.png"]


def test_plot_cutouts_shows_what_matte_wrote(run_dir, inputs, tmp_path):
    from gfm.matte import plot_cutouts

    out = tmp_path / "out"
    assert main_matte([str(inputs / "cat.jpg"), "--checkpoint", str(run_dir), "--out", str(out),
                       "--d1", "1", "--d2", "1", "--quiet"]) == 0
    fig = plot_cutouts([inputs / "cat.jpg"], out)
    assert len(fig.axes) == 3 and fig.axes[1].get_title() == "alpha (fusion)"
    with pytest.raises(ValueError, match="nothing to show"):
        plot_cutouts([], out)


def test_max_side_default_is_the_inference_cap():
    import argparse

    from gfm.model.infer import MAX_SIDE
    from gfm.matte import add_matte_parser

    parser = add_matte_parser(argparse.ArgumentParser().add_subparsers())
    assert parser.get_default("max_side") == MAX_SIDE
