import numpy as np
import pytest

from ganedit.heatmap import difference_heatmap
from ganedit.metrics import (
    in_out_mse,
    inside_share,
    lab_squared_error,
    rgb_to_lab,
)


@pytest.mark.parametrize(
    "rgb, lab",
    [
        ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
        ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
        ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
    ],
)
def test_rgb_to_lab_known_colours(rgb, lab):
    np.testing.assert_allclose(rgb_to_lab(np.array(rgb, dtype=np.uint8)), lab, atol=1e-2)


def test_rgb_to_lab_accepts_float_images_and_keeps_shape():
    image = np.random.default_rng(0).integers(0, 256, size=(4, 5, 3))
    lab_uint8 = rgb_to_lab(image.astype(np.uint8))
    assert lab_uint8.shape == (4, 5, 3) and lab_uint8.dtype == np.float64
    np.testing.assert_allclose(rgb_to_lab(image.astype(np.float32)), lab_uint8)


def test_rgb_to_lab_rejects_bad_input():
    with pytest.raises(ValueError, match="3"):
        rgb_to_lab(np.zeros((2, 2, 4)))
    with pytest.raises(ValueError, match="0, 255"):
        rgb_to_lab(np.full((2, 2, 3), 300.0))


def test_lab_squared_error_identical_images_is_zero():
    image = np.random.default_rng(1).integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
    error = lab_squared_error(image, image)
    assert error.shape == (6, 7)
    assert np.all(error == 0)


def test_lab_squared_error_black_vs_white():
    black = np.zeros((3, 4, 3), dtype=np.uint8)
    white = np.full((3, 4, 3), 255, dtype=np.uint8)
    np.testing.assert_allclose(lab_squared_error(black, white), np.full((3, 4), 100.0**2), atol=1e-6)


def test_lab_squared_error_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        lab_squared_error(np.zeros((2, 2, 3)), np.zeros((2, 3, 3)))


ERROR = np.array([[1.0, 2.0], [3.0, 4.0]])
ROI = np.array([[True, True], [False, False]])


def test_in_out_mse_hand_worked():
    assert in_out_mse(ERROR, ROI) == (1.5, 3.5)
    assert in_out_mse(ERROR, ~ROI) == (3.5, 1.5)


def test_in_out_mse_empty_side_is_zero():
    assert in_out_mse(ERROR, np.zeros((2, 2), dtype=bool)) == (0.0, 2.5)
    assert in_out_mse(ERROR, np.ones((2, 2), dtype=bool)) == (2.5, 0.0)


def test_inside_share():
    assert inside_share(ERROR, ROI) == pytest.approx(0.3)
    assert inside_share(np.zeros((2, 2)), ROI) == 0.0


def test_roi_must_be_boolean_and_match():
    with pytest.raises(ValueError, match="boolean"):
        in_out_mse(ERROR, ROI.astype(int))
    with pytest.raises(ValueError, match="shape"):
        inside_share(ERROR, np.ones((3, 2), dtype=bool))


def test_difference_heatmap_shape_colours_and_legend():
    height, width = 64, 80
    error = np.zeros((height, width))
    error[:, width // 2:] = 50.0
    image = difference_heatmap(error, vmax=50.0)

    assert image.dtype == np.uint8 and image.ndim == 3
    assert image.shape[0] == height and image.shape[1] > width and image.shape[2] == 3
    # heat-map part: inferno from black (no change) to pale yellow (vmax)
    assert tuple(image[0, 0]) == (0, 0, 4)
    assert tuple(image[0, -1 - (image.shape[1] - width)]) == (252, 255, 164)

    legend = image[:, width:].astype(int)
    brightness = legend.sum(axis=-1)
    # colour bar: a column that runs from pale yellow at the top to black at the bottom
    is_bar = [np.ptp(brightness[:, x]) > 500 for x in range(legend.shape[1])]
    bar_x = is_bar.index(True)
    bar = brightness[:, bar_x][brightness[:, bar_x] < 3 * 255]
    assert bar[0] > bar[-1] and bar[0] > 600 and bar[-1] < 20
    # tick labels: dark text pixels right of the bar near the top, middle and bottom
    text = brightness[:, bar_x + 12:] < 200
    for rows in (slice(0, 12), slice(height // 2 - 6, height // 2 + 6), slice(height - 12, height)):
        assert text[rows].any()
    assert not text[16:height // 2 - 8].any()


def test_difference_heatmap_default_vmax_ignores_outliers():
    error = np.full((20, 20), 10.0)
    error[0, 0] = 1e6
    image = difference_heatmap(error)
    # with a robust vmax the bulk of the map is at the top of the scale, not washed to black
    assert tuple(image[10, 10]) == (252, 255, 164)


def test_difference_heatmap_of_zero_error_is_black():
    image = difference_heatmap(np.zeros((5, 6)))
    assert image.shape[0] == 5 and image.shape[1] > 6
    assert np.all(image[:, :6] == (0, 0, 4))


def test_difference_heatmap_rejects_bad_vmax():
    with pytest.raises(ValueError, match="vmax"):
        difference_heatmap(np.ones((4, 4)), vmax=0.0)
