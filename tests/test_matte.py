"""``gfm matte`` (gfm.matte) and the ``gfm`` command line (gfm.cli): outputs, per-file failures,
exit codes, argument checks before the model loads, all-or-nothing writes, interrupts, help."""

from __future__ import annotations

import argparse
import errno
import inspect
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import gfm
from gfm import matte
from gfm.cli import build_parser, main
from gfm.core.io import write_image
from gfm.matte import collect_inputs, official_resize, parse_colour
from gfm.model.network import build_gfm

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--device", "cpu", "--d1", "1", "--d2", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, make_run):
    """A training run folder as gfm.train.loop writes it."""
    folder = tmp_path_factory.mktemp("models") / "tiny-tt"
    make_run(folder, "TT")
    return folder


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    rng = np.random.default_rng(0)
    write_image(folder / "cat.jpg", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    write_image(folder / "dog.png", rng.integers(0, 256, (64, 48, 3), dtype=np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    return folder


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model is loaded."""
    import gfm.model.infer

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(gfm.model.infer, "load_model", refuse)


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def _matte(*argv) -> int:
    return main(["matte", *map(str, argv)])


def _visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------------------------
# Outputs and exit codes
# --------------------------------------------------------------------------------------------

def test_matte_folder_with_a_corrupt_file(run_dir, inputs, tmp_path, capsys):
    out = tmp_path / "out"
    code = _matte(inputs, "--checkpoint", run_dir, "--out", out, *FAST)
    assert code == 1  # some inputs failed
    for stem, (h, w) in (("cat", (70, 90)), ("dog", (64, 48))):
        alpha = _read(out / f"{stem}_alpha.png")
        cutout = _read(out / f"{stem}_cutout.png")
        assert alpha.shape == (h, w) and alpha.dtype == np.uint8       # 8-bit grey
        assert cutout.shape == (h, w, 4) and cutout.dtype == np.uint8  # RGBA
        np.testing.assert_array_equal(cutout[..., 3], alpha)
    err = capsys.readouterr().err
    assert "broken.jpg" in err and "2 of 3 image(s) matted" in err and "1 failed" in err
    assert not (out / "broken_alpha.png").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_cutout_keeps_image_colours(run_dir, tmp_path):
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    write_image(tmp_path / "x.png", image)
    assert _matte(tmp_path / "x.png", "--checkpoint", run_dir / "model.pt", "--out", tmp_path / "o", "--device", "cpu",
                  "--strategy", "resize", "--d", "1", "--quiet") == 0
    cutout = cv2.cvtColor(_read(tmp_path / "o" / "x_cutout.png"), cv2.COLOR_BGRA2RGBA)
    np.testing.assert_array_equal(cutout[..., :3], image)


def test_all_inputs_fail_exit_1(run_dir, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"")
    assert _matte(tmp_path / "bad.png", "--checkpoint", run_dir, "--out", tmp_path / "o", "--device", "cpu") == 1
    assert "bad.png" in capsys.readouterr().err


def test_a_missing_input_among_good_ones_exits_1(run_dir, inputs, tmp_path, capsys):
    assert _matte(inputs / "dog.png", tmp_path / "gone.png", "--checkpoint", run_dir, "--out", tmp_path / "o",
                  *FAST, "--quiet") == 1
    assert "gone.png: no such file or folder" in capsys.readouterr().err
    assert _visible(tmp_path / "o") == ["dog_alpha.png", "dog_cutout.png"]


def test_usage_errors_exit_2(run_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:   # argparse: --checkpoint is required
        main(["matte", str(tmp_path)])
    assert exit_info.value.code == 2
    (tmp_path / "empty").mkdir()
    assert _matte(tmp_path / "empty", "--checkpoint", run_dir, "--out", tmp_path / "o") == 2
    write_image(tmp_path / "x.png", np.zeros((32, 32, 3), np.uint8))
    assert _matte(tmp_path / "x.png", "--checkpoint", tmp_path / "nope.pt", "--out", tmp_path / "o") == 2
    assert "nope.pt" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, says", [
    ("--d", "0", "argument --d: expected a number > 0, got '0'"),
    ("--d1", "-3", "argument --d1: expected a number > 0, got '-3'"),
    ("--d2", "two", "argument --d2: expected a number > 0, got 'two'"),
    ("--d2", "nan", "argument --d2: expected a number > 0, got 'nan'"),
    ("--max-side", "16", "argument --max-side: expected a whole number of pixels >= 32, got '16'"),
    ("--strategy", "fast", "argument --strategy: invalid choice: 'fast'"),
    ("--background", "blurple", "argument --background: 'blurple' is not a colour"),
    ("--background", "0,300,0", "argument --background: '0,300,0' is not R,G,B"),
    ("--official", "r34", "argument --official: official checkpoint spec must be BACKBONE-ROSTA"),
])
def test_bad_values_are_one_line_usage_errors(run_dir, tmp_path, capsys, no_model, option, value, says):
    write_image(tmp_path / "x.png", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(SystemExit) as exit_info:
        _matte(tmp_path / "x.png", "--checkpoint", run_dir, "--out", tmp_path / "o", option, value)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gfm matte: error: ") and says in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("case", ["out is a file", "out inside a file", "out not writable", "mask and background",
                                  "mask and foreground", "no such device"])
def test_output_folder_and_combinations_are_checked_before_the_model_loads(run_dir, tmp_path, capsys, no_model,
                                                                           case):
    write_image(tmp_path / "x.png", np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "file").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if case == "out not writable" and os.access(locked, os.W_OK):
        pytest.skip("running as a user who can write anywhere")
    out, extra, says = {
        "out is a file": (tmp_path / "file", [], "--out {}: exists and is not a folder"),
        "out inside a file": (tmp_path / "file" / "sub", [], "--out {}: not a writable folder"),
        "out not writable": (locked, [], "--out {}: not a writable folder (Permission denied)"),
        "mask and background": (tmp_path / "o", ["--mask-only", "--background", "white"], "exclude each other"),
        "mask and foreground": (tmp_path / "o", ["--mask-only", "--foreground", "ml"], "no use with --mask-only"),
        "no such device": (tmp_path / "o", ["--device", "tpu"], "device: 'tpu' is not a device name"),
    }[case]
    assert _matte(tmp_path / "x.png", "--checkpoint", run_dir, "--out", out, *extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says.format(out) in err


def test_rim_strategy_needs_a_rim_model(run_dir, tmp_path, capsys):
    write_image(tmp_path / "x.png", np.zeros((32, 32, 3), np.uint8))
    assert _matte(tmp_path / "x.png", "--checkpoint", run_dir, "--out", tmp_path / "o", "--strategy", "rim") == 2
    assert "--strategy rim needs a GFM-RIM model" in capsys.readouterr().err
    assert _visible(tmp_path / "o") == []


def test_official_checkpoint(tmp_path, capsys):
    torch.manual_seed(2)
    model = build_gfm("r18_lite", "FT")
    # official layout: the same module names, saved from nn.DataParallel ("module." prefix)
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "gfm_r18_ft.pth")
    write_image(tmp_path / "in" / "a.png", np.random.default_rng(3).integers(0, 256, (96, 64, 3), dtype=np.uint8))
    code = _matte(tmp_path / "in", "--checkpoint", tmp_path / "gfm_r18_ft.pth", "--official", "r18_lite-ft",
                  "--out", tmp_path / "o", "--device", "cpu", "--quiet")
    assert code == 0
    assert _read(tmp_path / "o" / "a_alpha.png").shape == (96, 64)
    # without --official the bare state dict is a usage error that names the fix
    assert _matte(tmp_path / "in", "--checkpoint", tmp_path / "gfm_r18_ft.pth", "--out", tmp_path / "o2",
                  "--device", "cpu") == 2
    assert "--official r34-tt" in capsys.readouterr().err


def test_official_pointed_at_a_run_folder_says_what_to_use(run_dir, tmp_path, capsys):
    write_image(tmp_path / "x.png", np.zeros((32, 32, 3), np.uint8))
    assert _matte(tmp_path / "x.png", "--checkpoint", run_dir, "--official", "r34-tt", "--out", tmp_path / "o") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a training run folder of this project" in err and "without --official" in err


def test_collect_inputs(tmp_path):
    write_image(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    files, missing = collect_inputs([tmp_path, tmp_path / "b.png", tmp_path / "gone.png"])
    assert [p.name for p in files] == ["a.jpg", "b.png"]
    assert [p.name for p in missing] == ["gone.png"]


def test_plot_cutouts_shows_what_matte_wrote(run_dir, inputs, tmp_path):
    out = tmp_path / "out"
    assert _matte(inputs / "cat.jpg", "--checkpoint", run_dir, "--out", out, "--d1", "1", "--d2", "1",
                  "--quiet") == 0
    fig = matte.plot_cutouts([inputs / "cat.jpg"], out)
    assert len(fig.axes) == 3 and fig.axes[1].get_title() == "alpha (fusion)"
    with pytest.raises(ValueError, match="nothing to show"):
        matte.plot_cutouts([], out)


def test_max_side_default_is_the_inference_cap():
    from gfm.model.infer import MAX_SIDE

    matte_parser = dict(_parsers(build_parser()))["gfm matte"]
    assert matte_parser.get_default("max_side") == matte.MAX_SIDE == MAX_SIDE


# --------------------------------------------------------------------------------------------
# Mask only, background colour, the official pre-resize, EXIF
# --------------------------------------------------------------------------------------------

def test_mask_only_writes_the_matte_alone(run_dir, inputs, tmp_path):
    assert _matte(inputs / "dog.png", "--checkpoint", run_dir, "--out", tmp_path / "o", *FAST, "--mask-only",
                  "--quiet") == 0
    assert _visible(tmp_path / "o") == ["dog_alpha.png"]


@pytest.mark.parametrize("colour", ["white", "#00ff00", "0, 255, 0"])
def test_background_composites_over_a_solid_colour(run_dir, inputs, tmp_path, colour):
    assert _matte(inputs / "dog.png", "--checkpoint", run_dir, "--out", tmp_path / "o", *FAST, "--background", colour,
                  "--quiet") == 0
    assert _visible(tmp_path / "o") == ["dog_alpha.png", "dog_composite.png"]
    composite = cv2.cvtColor(_read(tmp_path / "o" / "dog_composite.png"), cv2.COLOR_BGR2RGB)
    a = _read(tmp_path / "o" / "dog_alpha.png")[..., None] / 255.0
    image = cv2.cvtColor(_read(inputs / "dog.png"), cv2.COLOR_BGR2RGB)
    expected = a * image + (1 - a) * np.array(parse_colour(colour))  # Eq. 1 over a solid background
    assert composite.shape == (64, 48, 3)
    np.testing.assert_allclose(composite, expected, atol=1.01)  # the matte file is rounded to 1/255


def test_parse_colour():
    assert parse_colour("white") == (255, 255, 255)
    assert parse_colour("#00FF00") == parse_colour("0,255,0") == parse_colour("lime") == (0, 255, 0)
    assert parse_colour("#f80") == (255, 136, 0)
    for bad in ("", "0,255", "1,2,3,4", "-1,0,0", "#12345g"):
        with pytest.raises(ValueError):
            parse_colour(bad)


def test_official_resize_shrinks_the_shorter_side_to_1080(run_dir, tmp_path):
    image = np.random.default_rng(4).integers(0, 256, (1200, 1100, 3), dtype=np.uint8)
    assert official_resize(image).shape == (1178, 1080, 3)              # int(1080 * 1200 / 1100) = 1178
    assert official_resize(image.transpose(1, 0, 2)).shape == (1080, 1178, 3)
    assert official_resize(image[:1000]) is not None and official_resize(image[:1000]).shape == (1000, 1100, 3)
    write_image(tmp_path / "big.png", image)
    assert _matte(tmp_path / "big.png", "--checkpoint", run_dir, "--out", tmp_path / "o", "--device", "cpu",
                  "--max-side", "64", "--official-resize", "--quiet") == 0
    assert _read(tmp_path / "o" / "big_alpha.png").shape == (1178, 1080)


def test_pre_resize_option(run_dir, tmp_path):
    parser = dict(_parsers(build_parser()))["gfm matte"]
    assert parser.get_default("pre_resize") is None                      # off by default
    assert "--pre-resize" in parser.format_help() and "official test" in parser.format_help()
    base = ["matte", "x.png", "--checkpoint", "c", "--out", "o"]
    assert build_parser().parse_args([*base, "--pre-resize"]).pre_resize == 1080
    assert build_parser().parse_args([*base, "--pre-resize", "500"]).pre_resize == 500
    assert build_parser().parse_args([*base, "--official-resize"]).pre_resize == 1080
    image = np.random.default_rng(5).integers(0, 256, (240, 160, 3), dtype=np.uint8)
    write_image(tmp_path / "tall.png", image)
    assert _matte(tmp_path / "tall.png", "--checkpoint", run_dir, "--out", tmp_path / "o", *FAST,
                  "--pre-resize", "100", "--quiet") == 0
    assert _read(tmp_path / "o" / "tall_alpha.png").shape == (150, 100)   # shorter side 160 -> 100, 240 -> 150
    assert _matte(tmp_path / "tall.png", "--checkpoint", run_dir, "--out", tmp_path / "p", *FAST,
                  "--pre-resize", "--quiet") == 0                          # 160 < 1080: unchanged
    assert _read(tmp_path / "p" / "tall_alpha.png").shape == (240, 160)


def test_fusion_option_defaults_to_official_and_reaches_predict(run_dir, tmp_path, monkeypatch):
    import gfm.model.infer
    from gfm.model.infer import FUSIONS

    parser = dict(_parsers(build_parser()))["gfm matte"]
    assert parser.get_default("fusion") == "official" and matte.FUSIONS == FUSIONS
    seen, predict = [], gfm.model.infer.predict
    monkeypatch.setattr(gfm.model.infer, "predict", lambda *a, **k: seen.append(k["fusion"]) or predict(*a, **k))
    write_image(tmp_path / "x.png", np.zeros((40, 50, 3), np.uint8))
    for extra in ([], ["--fusion", "upsampled"]):
        assert _matte(tmp_path / "x.png", "--checkpoint", run_dir, "--out", tmp_path / "o", *FAST, *extra,
                      "--quiet") == 0
    assert seen == ["official", "upsampled"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["matte", "x.png", "--checkpoint", "c", "--out", "o", "--fusion", "eq7"])


def test_a_phone_photo_is_matted_upright(run_dir, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, displayed portrait
    Image.fromarray(np.zeros((48, 80, 3), np.uint8)).save(tmp_path / "phone.jpg", exif=exif.tobytes())
    assert _matte(tmp_path / "phone.jpg", "--checkpoint", run_dir, "--out", tmp_path / "o", *FAST, "--quiet") == 0
    assert _read(tmp_path / "o" / "phone_alpha.png").shape == (80, 48)


# --------------------------------------------------------------------------------------------
# All-or-nothing writes, interrupts
# --------------------------------------------------------------------------------------------

def test_alpha_and_cutout_are_written_together_or_not_at_all(run_dir, inputs, tmp_path, monkeypatch, capsys):
    real, calls = matte.write_image, []

    def full_disk_on_second_write(path, image, *args, **kwargs):
        calls.append(Path(path).name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, image, *args, **kwargs)

    monkeypatch.setattr(matte, "write_image", full_disk_on_second_write)
    out = tmp_path / "out"
    assert _matte(inputs / "cat.jpg", inputs / "dog.png", "--checkpoint", run_dir, "--out", out, *FAST,
                  "--quiet") == 1
    assert len(calls) == 4
    assert _visible(out) == ["dog_alpha.png", "dog_cutout.png"]  # no cat_alpha.png without its cut-out
    err = capsys.readouterr().err
    assert "cat.jpg" in err and "No space left on device" in err


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_ends_with_a_one_line_summary(run_dir, inputs, tmp_path, monkeypatch, capsys, signum, code):
    real, calls = matte.matte_image, []

    def signal_on_the_third_image(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 3:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the handler interrupts this
        return real(*args, **kwargs)

    monkeypatch.setattr(matte, "matte_image", signal_on_the_third_image)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    out = tmp_path / "out"
    assert _matte(inputs, "--checkpoint", run_dir, "--out", out, *FAST, "--quiet") == code
    err = capsys.readouterr().err
    name = signal.Signals(signum).name
    assert err.strip().splitlines()[-1] == f"gfm matte: interrupted by {name}: 1 of 3 image(s) matted into {out}"
    assert "Traceback" not in err
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert [p.name for p in calls] == ["broken.jpg", "cat.jpg", "dog.png"]  # broken.jpg failed, cat.jpg done
    assert _visible(out) == ["cat_alpha.png", "cat_cutout.png"]


@pytest.mark.slow
def test_ctrl_c_in_a_real_process_prints_no_traceback(run_dir, tmp_path):
    rng = np.random.default_rng(5)
    for i in range(40):
        write_image(tmp_path / "in" / f"im{i:02d}.png", rng.integers(0, 256, (256, 256, 3), dtype=np.uint8))
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "gfm.cli", "matte", str(tmp_path / "in"), "--checkpoint",
                                str(run_dir), "--out", str(out), *FAST, "--quiet"],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not (out / "im00_cutout.png").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "Traceback" not in err and err.strip().count("\n") == 0
    assert err.startswith("gfm matte: interrupted by SIGINT: ") and f"of 40 image(s) matted into {out}" in err
    alphas = {p.name[:-len("_alpha.png")] for p in out.glob("*_alpha.png")}
    assert alphas == {p.name[:-len("_cutout.png")] for p in out.glob("*_cutout.png")}  # in pairs
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# --------------------------------------------------------------------------------------------
# The gfm command line: version, help
# --------------------------------------------------------------------------------------------

def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out.strip() == f"gfm {gfm.__version__}"


def _parsers(parser, name="gfm"):
    """(command, parser) of ``parser`` and of every sub-command under it."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, child in action.choices.items():
                yield from _parsers(child, f"{name} {sub}")


def test_every_option_says_its_default_and_help_has_no_markup(capsys):
    seen = []
    for name, parser in _parsers(build_parser()):
        seen.append(name)
        for action in parser._actions:
            if not action.option_strings or action.dest in ("help", "version"):
                continue
            assert action.help and ("default" in action.help or "required" in action.help), (name, action.dest)
        text = parser.format_help()
        for markup in ("``", ":func:", ":mod:", ":data:", ":class:"):
            assert markup not in text, (name, markup)
    assert {"gfm", "gfm matte", "gfm world build", "gfm profile", "gfm html"} <= set(seen)
    from gfm.data.world import build_world

    world = " ".join(dict(_parsers(build_parser()))["gfm world build"].format_help().split())
    n_train = inspect.signature(build_world).parameters["n_train"].default  # one place for the default
    assert f"real photos in the training split (default: {n_train})" in world
