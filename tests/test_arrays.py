"""gfm.core.arrays: the one 8-bit <-> [0, 1] conversion and the boundary close-up window."""
import numpy as np
import pytest

from gfm.core.arrays import boundary_window, to01, to_uint8


def test_to01_and_to_uint8_round_trip_and_clip():
    u8 = np.array([[0, 128, 255]], np.uint8)
    assert np.array_equal(to_uint8(to01(u8)), u8)
    assert to01(np.array([-0.5, 0.5, 1.5])).tolist() == [0.0, 0.5, 1.0]
    assert to01(np.array([1.5], np.float32), clip=False).tolist() == [1.5]
    assert to_uint8(np.array([65535, 0], np.uint16)).tolist() == [255, 0]
    with pytest.raises(ValueError, match="alpha must be uint8"):
        to01(np.array([1], np.int32), "alpha")
    with pytest.raises(ValueError, match="mask must be uint8"):
        to_uint8(np.array([1], np.int64), "mask")


def test_boundary_window_finds_the_transition():
    alpha = np.zeros((100, 120), np.uint8)
    alpha[:, 80:] = 255
    alpha[40:60, 70:80] = 128  # the only soft pixels
    y0, x0, size = boundary_window(alpha, 30)
    assert size == 30
    assert y0 <= 40 and y0 + size >= 60 and x0 <= 70 and x0 + size >= 80
    hard = np.zeros((50, 50), np.uint8)
    hard[:, 25:] = 255
    y0, x0, size = boundary_window(hard, 10)
    assert x0 <= 25 <= x0 + size
    assert boundary_window(np.zeros((50, 60), np.uint8), 100) == (0, 5, 50)
