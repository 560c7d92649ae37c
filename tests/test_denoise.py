"""Denoisers (gfm.compose.denoise) and the cached denoising step."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gfm.compose import denoise as dn
from gfm.core.io import sha256_file
from gfm.core.io import read_image, write_image


def _noisy_constant(size=64, sigma=10.0, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(128 + rng.normal(0, sigma, (size, size, 3))), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("method, size", [("nlm", 64),
                                          pytest.param("bm3d", 32, marks=pytest.mark.slow)])  # bm3d: ~10 s
def test_denoisers_reduce_noise_on_a_constant_image(method, size):
    noisy = _noisy_constant(size)
    out = dn.denoise(noisy, method, sigma=10.0)
    assert out.dtype == np.uint8 and out.shape == noisy.shape
    assert np.abs(out.astype(float) - 128).std() < 0.5 * np.abs(noisy.astype(float) - 128).std()
    assert abs(out.mean() - 128) < 2


def test_estimated_sigma_and_float_input():
    noisy = _noisy_constant(96)
    assert abs(dn.estimate_noise(noisy) - 10) < 1.5
    out = dn.denoise(noisy.astype(np.float32) / 255, "nlm")  # sigma estimated
    assert out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert (out * 255 - 128).std() < 5


def test_none_is_the_identity_and_bad_arguments_raise():
    noisy = _noisy_constant(8)
    out = dn.denoise(noisy, "none")
    np.testing.assert_array_equal(out, noisy)
    assert out is not noisy
    with pytest.raises(ValueError, match="method"):
        dn.denoise(noisy, "wiener")
    with pytest.raises(ValueError, match="sigma"):
        dn.denoise(noisy, "nlm", sigma=-1)
    with pytest.raises(ValueError, match="shape"):
        dn.denoise(noisy[..., :2], "nlm")


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}


def test_denoise_folder_caches_by_recipe_and_source(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(3):
        write_image(src / f"im{i}.jpg", _noisy_constant(24, seed=i))
    first = dn.denoise_folder(src, dst, "nlm", workers=1, sigma=10.0, progress=False)
    assert list(first.name) == ["im0", "im1", "im2"] and not first.cached.any()
    assert (first.method == "nlm").all()
    assert (dst / "manifest.csv").is_file()
    sidecar = json.loads((dst / "im0.recipe.json").read_text())
    assert sidecar["recipe"]["method"] == "nlm" and sidecar["source_sha256"] == sha256_file(src / "im0.jpg")
    before = _mtimes(dst)
    np.testing.assert_array_equal(read_image(dst / "im1.png"),
                                  dn.denoise(read_image(src / "im1.jpg"), "nlm", sigma=10.0))

    again = dn.denoise_folder(src, dst, "nlm", workers=1, sigma=10.0, progress=False)
    assert again.cached.all() and _mtimes(dst) == before  # nothing recomputed

    write_image(src / "im2.jpg", _noisy_constant(24, seed=9))  # a changed source image
    changed = dn.denoise_folder(src, dst, "nlm", workers=1, sigma=10.0, progress=False)
    assert list(changed.cached) == [True, True, False]

    other = dn.denoise_folder(src, dst, "nlm", workers=1, sigma=10.0, nlm_strength=2.0, progress=False)
    assert not other.cached.any()  # a parameter change invalidates the cache
    method = dn.denoise_folder(src, dst, "none", workers=1, progress=False)
    assert not method.cached.any() and (method.method == "none").all()
    np.testing.assert_array_equal(read_image(dst / "im0.png"), read_image(src / "im0.jpg"))


def test_denoise_folder_recomputes_a_missing_or_corrupt_sidecar(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    write_image(src / "a.png", _noisy_constant(16))
    dn.denoise_folder(src, dst, "nlm", workers=1, progress=False)
    (dst / "a.recipe.json").write_text("{not json")
    assert not dn.denoise_folder(src, dst, "nlm", workers=1, progress=False).cached.any()
    os.remove(dst / "a.png")
    assert not dn.denoise_folder(src, dst, "nlm", workers=1, progress=False).cached.any()
