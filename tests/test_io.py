"""gfm.core.io: atomic files and folders -- nothing half-written is ever visible; image reading."""

import io
import os
import struct
import zipfile
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from gfm.core.io import (
    BYTES_PER_PIXEL,
    MAX_PIXELS_ENV,
    ImageError,
    atomic_dir,
    atomic_path,
    max_image_pixels,
    read_alpha,
    read_image,
    replace_dir,
    write_image,
)
from gfm.data.archive import extract_archive


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


def test_atomic_dir_removes_the_parent_folders_it_made_when_the_build_fails(tmp_path):
    (tmp_path / "kept").mkdir()
    dest = tmp_path / "kept" / "a" / "b" / "out"
    with pytest.raises(ValueError, match="refused"), atomic_dir(dest) as tmp:
        (tmp / "half.txt").write_text("x")
        raise ValueError("refused")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]     # a/ and a/b/ are gone, kept/ stays
    with atomic_dir(dest) as tmp:                                       # a success keeps them
        (tmp / "done.txt").write_text("x")
    assert (dest / "done.txt").is_file()


def test_extract_archive_refusing_a_traversal_leaves_no_folder_behind(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.txt", b"x")
    (tmp_path / "evil.zip").write_bytes(buffer.getvalue())
    with pytest.raises(Exception, match="escape"):
        extract_archive(tmp_path / "evil.zip", tmp_path / "new" / "deep" / "dest")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip"]


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


# --------------------------------------------------------------------------------------------
# Image reading: EXIF orientation, the pixel cap
# --------------------------------------------------------------------------------------------

def _with_orientation(path, array, orientation, fmt, **options):
    """Save ``array`` with Pillow, tagged with EXIF orientation ``orientation`` (tag 274)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(path, fmt, exif=exif.tobytes(), **options)
    return path


def _upright(path):
    """What a viewer shows: Pillow's exif_transpose of the file."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image))


def test_a_phone_photo_with_orientation_6_comes_out_rotated(tmp_path):
    stored = np.zeros((48, 96, 3), np.uint8)  # landscape as stored by the sensor
    stored[:24, :48] = (250, 0, 0)            # red top-left quarter
    stored[24:, 48:] = (0, 0, 250)            # blue bottom-right quarter
    path = _with_orientation(tmp_path / "phone.jpg", stored, 6, "JPEG", quality=95)
    image = read_image(path)
    assert image.shape == (96, 48, 3)                            # portrait, as displayed
    as_stored = cv2.cvtColor(cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)
    assert as_stored.shape == (48, 96, 3)                        # what OpenCV's IMREAD_UNCHANGED gives
    np.testing.assert_array_equal(image, np.rot90(as_stored, -1))  # 90 degrees clockwise
    assert image[5, 40, 0] > 200 and image[90, 5, 2] > 200      # red top-right, blue bottom-left
    np.testing.assert_allclose(image, _upright(path), atol=2)


#: EXIF orientation -> the Pillow operation that shows the stored pixels upright (as ImageOps.exif_transpose).
UPRIGHT = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
           4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
           7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def test_a_damaged_exif_block_leaves_the_image_as_stored(tmp_path, recwarn):
    stored = np.random.default_rng(0).integers(0, 256, (8, 12, 3), dtype=np.uint8)
    Image.fromarray(stored).save(tmp_path / "x.png", exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff garbage")
    np.testing.assert_array_equal(read_image(tmp_path / "x.png"), stored)
    assert not recwarn.list


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt, suffix, options", [("PNG", "png", {}), ("WEBP", "webp", {"lossless": True}),
                                                  ("TIFF", "tif", {})])
def test_every_orientation_matches_what_a_viewer_shows(tmp_path, fmt, suffix, options, orientation):
    rgba = np.random.default_rng(orientation).integers(0, 256, (6, 10, 4), dtype=np.uint8)
    colour = _with_orientation(tmp_path / f"c.{suffix}", np.ascontiguousarray(rgba[..., :3]), orientation, fmt,
                               **options)
    np.testing.assert_array_equal(read_image(colour), _upright(colour))
    # the alpha of an RGBA file (Pillow's exif_transpose mis-orients RGBA TIFFs, so the reference is built here)
    matte = _with_orientation(tmp_path / f"m.{suffix}", rgba, orientation, fmt, **options)
    alpha = Image.fromarray(np.ascontiguousarray(rgba[..., 3]))
    expected = np.asarray(alpha if UPRIGHT[orientation] is None else alpha.transpose(UPRIGHT[orientation]))
    np.testing.assert_array_equal(read_alpha(matte), expected)


def _png_declaring(width, height) -> bytes:
    """A 100-byte PNG whose header (IHDR) declares ``width`` x ``height`` RGB pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


@pytest.fixture
def no_decoding(monkeypatch):
    """Fail the test if anything is decoded."""
    def decode(*args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(cv2, "imdecode", decode)


@pytest.mark.parametrize("reader", [read_image, read_alpha])
def test_a_header_declaring_20000_x_20000_fails_fast_before_decoding(tmp_path, no_decoding, reader):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_declaring(20000, 20000))
    assert path.stat().st_size < 200
    with pytest.raises(ImageError, match=r"bomb\.png: its header declares 400,000,000 pixels") as error:
        reader(path)
    assert "not decoded" in str(error.value)


def test_the_pixel_cap_is_an_argument_an_environment_variable_or_the_memory(tmp_path, monkeypatch, no_decoding):
    path = tmp_path / "big.png"
    path.write_bytes(_png_declaring(10000, 5000))
    with pytest.raises(ImageError, match=r"big\.png: 10000 x 5000 = 50,000,000 pixels .* cap of 1,000,000"):
        read_image(path, max_pixels=1_000_000)
    monkeypatch.setenv(MAX_PIXELS_ENV, "2_000_000")
    assert max_image_pixels() == 2_000_000
    with pytest.raises(ImageError, match=r"cap of 2,000,000; not decoded \(raise the cap with GFM_MAX_PIXELS"):
        read_alpha(path)
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(ValueError, match="GFM_MAX_PIXELS='lots': expected a positive whole number"):
        read_image(path)
    monkeypatch.delenv(MAX_PIXELS_ENV)
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2 * 2**30 // 4096}  # a 2 GiB machine
    monkeypatch.setattr(os, "sysconf", pages.__getitem__)
    assert max_image_pixels() == 2 * 2**30 // BYTES_PER_PIXEL == 16_777_216
    with pytest.raises(ImageError, match="cap of 16,777,216"):
        read_image(path)


def test_an_image_within_the_cap_reads_and_bad_files_name_themselves(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    write_image(tmp_path / "ok.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "ok.png", max_pixels=1200), image)
    with pytest.raises(ImageError, match=r"ok\.png: 40 x 30 = 1,200 pixels .* cap of 1,199"):
        read_image(tmp_path / "ok.png", max_pixels=1199)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    for name, match in (("empty.png", "empty file"), ("junk.jpg", "not a readable image"), ("gone.png", "no such")):
        with pytest.raises(ImageError, match=rf"{name}: {match}"):
            read_image(tmp_path / name)


def test_write_json_is_strict_json_with_numpy_values(tmp_path):
    import json as _json

    import numpy as _np

    from gfm.core.io import write_json

    path = write_json(tmp_path / "m.json", {"ok": _np.bool_(True), "nan": float("nan"), "x": _np.float32(1.5),
                                            "inf": _np.float64("inf"), "a": _np.arange(2), "p": tmp_path})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert _json.loads(text) == {"ok": True, "nan": None, "x": 1.5, "inf": None, "a": [0, 1], "p": str(tmp_path)}


def test_stale_staging_of_a_killed_run_is_removed_when_the_folder_is_written_again(tmp_path):
    from gfm.core.io import atomic_dir, clean_stale_staging

    target = tmp_path / "composites"
    target.mkdir()                                        # the previous good output
    left = tmp_path / ".composites.abcd1234.tmp"          # an atomic_dir staging folder of a killed run
    left.mkdir()
    (left / "big.png").write_bytes(b"x" * 100)
    aside = tmp_path / ".composites.old-123-456"          # replace_dir's moved-aside copy
    aside.mkdir()
    other = tmp_path / ".other.abcd1234.tmp"              # another target's staging: not touched
    other.mkdir()
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("new")
    assert not left.exists() and not aside.exists() and other.exists()
    assert (target / "a.txt").read_text() == "new"
    assert clean_stale_staging(tmp_path / "missing" / "x") == []
    alone = tmp_path / ".gone.old-1-2"                    # moved aside but never replaced: kept
    alone.mkdir()
    assert clean_stale_staging(tmp_path / "gone") == [] and alone.exists()
