"""The common corruptions against the reference generators of Hendrycks & Dietterich (2019):
the deterministic ones against their definitions computed here independently (scikit-image
HSV, Pillow's BOX resize and JPEG, scikit-image's Gaussian, brute-force loops), the random
ones by their statistics, and shape / dtype / range / seeding / grayscale / size for all.
"""

import io

import cv2
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.color
import skimage.filters
from PIL import Image

from keras_cnnvis.robustness import BENCHMARK, CORRUPTIONS, FAMILIES, HELD_OUT, corrupt
from keras_cnnvis.robustness._common import geometry, motion_blur_planes
from keras_cnnvis.robustness.blur import glass_sources

RANDOM = {
    "gaussian_noise",
    "shot_noise",
    "impulse_noise",
    "speckle_noise",
    "glass_blur",
    "motion_blur",
    "snow",
    "frost",
    "fog",
    "spatter",
    "elastic_transform",
}
# Reference constants, typed from the reference generators (make_cifar_c.py,
# make_tinyimagenet_c.py, make_imagenet_c.py), per reference size.
CONTRAST = {32: [0.75, 0.5, 0.4, 0.3, 0.15], 64: [0.4, 0.3, 0.2, 0.1, 0.05]}
BRIGHTNESS = {32: [0.05, 0.1, 0.15, 0.2, 0.3], 64: [0.1, 0.2, 0.3, 0.4, 0.5]}
SATURATE = {
    32: [(0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
    64: [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)],
    224: [(0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
}
PIXELATE = {
    32: [0.95, 0.9, 0.85, 0.75, 0.65],
    64: [0.9, 0.8, 0.7, 0.6, 0.5],
    224: [0.6, 0.5, 0.4, 0.3, 0.25],
}
JPEG = {32: [80, 65, 58, 50, 40], 64: [65, 58, 50, 40, 25], 224: [25, 18, 15, 10, 7]}
GAUSSIAN_NOISE = {32: [0.04, 0.06, 0.08, 0.09, 0.10], 64: [0.04, 0.08, 0.12, 0.15, 0.18]}
SHOT_NOISE = {32: [500, 250, 100, 75, 50], 64: [250, 100, 50, 30, 15]}
IMPULSE_NOISE = {32: [0.01, 0.02, 0.03, 0.05, 0.07], 64: [0.01, 0.02, 0.05, 0.08, 0.14]}
SPECKLE_NOISE = {32: [0.06, 0.1, 0.12, 0.16, 0.2], 64: [0.15, 0.2, 0.25, 0.3, 0.35]}
GAUSSIAN_BLUR = {32: [0.4, 0.6, 0.7, 0.8, 1.0], 64: [0.5, 0.75, 1.0, 1.25, 1.5]}
FOG = {32: [(0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)]}
FROST = {32: [(1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)]}
SEVERITIES = [1, 2, 3, 4, 5]


def photos(n, size, seed=0, grey_pixels=False):
    """Smooth random colour images in [0, 1] (with some exactly grey and black pixels)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, size // 4 + 1, size // 4 + 1, 3))
    x = ndi.zoom(x, (1, size / x.shape[1], size / x.shape[2], 1), order=1)[:, :size, :size]
    x = np.clip(x + 0.1 * rng.standard_normal(x.shape), 0, 1).astype(np.float32)
    if grey_pixels:
        x[:, :3] = x[:, :3, :, :1]  # grey rows
        x[:, 3, :4] = 0  # black pixels
    return x


def test_names_and_families():
    assert len(BENCHMARK) == 15 and len(HELD_OUT) == 4 and len(CORRUPTIONS) == 19
    assert set(HELD_OUT) == {"speckle_noise", "gaussian_blur", "spatter", "saturate"}
    assert sorted(n for f in FAMILIES.values() for n in f) == sorted(CORRUPTIONS)


@pytest.mark.parametrize(
    "side, reference",
    [(8, 32), (28, 32), (32, 32), (45, 32), (46, 64), (64, 64), (100, 64), (119, 64)]
    + [(120, 224), (224, 224), (299, 224), (512, 224)],
)
def test_reference_size_is_the_nearest_on_a_log_scale(side, reference):
    geo = geometry(side, side + 10)
    assert geo.reference == reference
    assert geo.scale == pytest.approx(side / reference)


@pytest.mark.parametrize("size", [32, 64])
def test_contrast_is_the_reference_definition(size):
    x = photos(4, size)
    for severity, c in zip(SEVERITIES, CONTRAST[size]):
        means = x.mean(axis=(1, 2), keepdims=True)
        expected = np.clip((x - means) * c + means, 0, 1)
        np.testing.assert_allclose(corrupt(x, "contrast", severity), expected, atol=1e-6)


def _hsv_reference(image, channel, fn):
    hsv = skimage.color.rgb2hsv(image.astype(np.float64))
    hsv[..., channel] = fn(hsv[..., channel])
    return np.clip(skimage.color.hsv2rgb(hsv), 0, 1)


@pytest.mark.parametrize("size", [32, 64])
def test_brightness_is_the_reference_definition(size):
    x = photos(3, size, grey_pixels=True)
    for severity, c in zip(SEVERITIES, BRIGHTNESS[size]):
        expected = [_hsv_reference(im, 2, lambda v: np.clip(v + c, 0, 1)) for im in x]
        np.testing.assert_allclose(corrupt(x, "brightness", severity), expected, atol=2e-6)


@pytest.mark.parametrize("size", [32, 64, 224])
def test_saturate_is_the_reference_definition(size):
    x = photos(2, size, grey_pixels=True)
    for severity, (a, b) in zip(SEVERITIES, SATURATE[size]):
        expected = [_hsv_reference(im, 1, lambda s: np.clip(s * a + b, 0, 1)) for im in x]
        np.testing.assert_allclose(corrupt(x, "saturate", severity), expected, atol=2e-6)


def _pil_pixelate(image, fraction):
    h, w = image.shape[:2]
    out = []
    for ch in np.moveaxis(image, -1, 0):
        small = Image.fromarray(ch, mode="F").resize(
            (int(w * fraction), int(h * fraction)), Image.BOX
        )
        out.append(np.asarray(small.resize((w, h), Image.BOX)))
    return np.stack(out, -1)


@pytest.mark.parametrize("size, reference", [(32, 32), (64, 64), (100, 64), (224, 224)])
def test_pixelate_is_pillows_box_resize_down_and_up(size, reference):
    x = photos(2, size)
    for severity, fraction in zip(SEVERITIES, PIXELATE[reference]):
        expected = [_pil_pixelate(im, fraction) for im in x]
        np.testing.assert_allclose(corrupt(x, "pixelate", severity), expected, atol=1e-5)


@pytest.mark.parametrize("size", [32, 64, 224])
@pytest.mark.parametrize("channels", [3, 1])
def test_jpeg_compression_is_a_pillow_jpeg_round_trip(size, channels):
    x = photos(2, size)[..., :channels]
    pixels = np.round(x * 255).astype(np.uint8)
    for severity, quality in zip(SEVERITIES, JPEG[size]):
        expected = []
        for im in pixels:
            buffer = io.BytesIO()
            Image.fromarray(im[..., 0] if channels == 1 else im).save(
                buffer, "JPEG", quality=quality
            )
            decoded = np.asarray(Image.open(buffer), np.float32) / 255
            expected.append(decoded.reshape(im.shape))
        got = corrupt(x, "jpeg_compression", severity)
        assert np.abs(got - np.array(expected)).max() <= 1 / 255 + 1e-6
        assert np.abs(got - x).mean() > 0.002  # it did compress


@pytest.mark.parametrize("size, reference", [(32, 32), (64, 64), (100, 64)])
def test_gaussian_blur_is_scikit_image_gaussian(size, reference):
    x = photos(2, size)
    for severity, sigma in zip(SEVERITIES, GAUSSIAN_BLUR[reference]):
        sigma = sigma * size / reference  # the radius scales with the image
        expected = skimage.filters.gaussian(x.astype(np.float64), sigma=(0, sigma, sigma, 0))
        got = corrupt(x, "gaussian_blur", severity)
        np.testing.assert_allclose(got, np.clip(expected, 0, 1), atol=1e-5)


def test_defocus_blur_is_a_disk_convolution():
    """At 64 px, severity 5 is a disk of radius 3 (anti-aliased by a 3x3 Gaussian of sigma
    0.1, which leaves it unchanged): each pixel away from the border is the mean of the
    29 pixels within distance 3."""
    x = photos(2, 64)
    got = corrupt(x, "defocus_blur", 5)
    offsets = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4) if dy * dy + dx * dx <= 9]
    assert len(offsets) == 29
    expected = np.mean([np.roll(x, (-dy, -dx), axis=(1, 2)) for dy, dx in offsets], axis=0)
    np.testing.assert_allclose(got[:, 3:-3, 3:-3], expected[:, 3:-3, 3:-3], atol=1e-5)


def _reference_disk(radius, alias_blur):
    """The reference generators' defocus kernel, on their full grid."""
    if radius <= 8:
        grid, ksize = np.arange(-8, 8 + 1), (3, 3)
    else:
        grid, ksize = np.arange(-radius, radius + 1), (5, 5)
    xx, yy = np.meshgrid(grid, grid)
    disk = ((xx**2 + yy**2) <= radius**2).astype(np.float32)
    disk /= disk.sum()
    return cv2.GaussianBlur(disk, ksize=ksize, sigmaX=alias_blur)


@pytest.mark.parametrize(
    "size, constants",
    [
        (32, [(0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)]),
        (224, [(3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)]),
    ],
)
def test_defocus_blur_is_the_references_disk_filter(size, constants):
    x = photos(1, size)
    for severity, (radius, alias) in enumerate(constants, 1):
        kernel = _reference_disk(radius, alias)
        expected = np.stack([cv2.filter2D(x[0, :, :, c], -1, kernel) for c in range(3)], -1)
        got = corrupt(x, "defocus_blur", severity)[0]
        np.testing.assert_allclose(got, np.clip(expected, 0, 1), atol=1e-5)


def _imagemagick_motion_blur(plane, radius, sigma, angle):
    """ImageMagick's MotionBlurImage, pixel by pixel: one-sided Gaussian taps along the
    angle, rounded to whole pixels, edge pixels repeated outside the image."""
    width = 2 * int(np.ceil(radius)) + 1
    weights = np.exp(-(np.arange(width) ** 2) / (2 * sigma**2))
    weights /= weights.sum()
    t = np.deg2rad(angle)
    h, w = plane.shape
    out = np.zeros_like(plane, dtype=np.float64)
    for i in range(width):
        ox, oy = int(np.ceil(i * np.cos(t) - 0.5)), int(np.ceil(i * np.sin(t) - 0.5))
        ys = np.clip(np.arange(h) + oy, 0, h - 1)
        xs = np.clip(np.arange(w) + ox, 0, w - 1)
        out += weights[i] * plane[np.ix_(ys, xs)]
    return out


@pytest.mark.parametrize(
    "radius, sigma, angle", [(6, 1, 0), (8, 2, 30), (12, 3, -44), (9, 2.5, 90)]
)
def test_motion_blur_is_imagemagicks_line_kernel(radius, sigma, angle):
    plane = photos(1, 32)[0, :, :, 0]
    got = motion_blur_planes(plane, radius, sigma, angle)
    np.testing.assert_allclose(
        got, _imagemagick_motion_blur(plane, radius, sigma, angle), atol=1e-5
    )


def test_motion_blur_smears_a_point_to_one_side_within_45_degrees():
    x = np.zeros((6, 32, 32, 1), np.float32)
    x[:, 16, 16] = 1
    out = corrupt(x, "motion_blur", 5)[..., 0]
    ys, xs = np.mgrid[:32, :32]
    for image in out:
        assert image.sum() == pytest.approx(1.0, abs=1e-5)  # the kernel sums to 1
        dx = (image * (xs - 16)).sum()
        dy = (image * (ys - 16)).sum()
        # Output pixel p reads p + offset: the point spreads against the angle's direction.
        assert dx < -0.5 and abs(dy) <= abs(dx) + 1e-6


def _reference_glass_loop(h, w, delta, passes, n, seed):
    """The reference's loop, literally, on RGB images whose pixels hold their own index
    (the same random offsets): where each pixel's value comes from."""
    rng = np.random.default_rng(seed)
    x = np.repeat(np.arange(h * w).reshape(1, h, w, 1), n, 0).repeat(3, -1)
    visits = [(r, c) for r in range(h - delta, delta, -1) for c in range(w - delta, delta, -1)]
    for _ in range(passes):
        off = rng.integers(-delta, delta, size=(n, len(visits), 2))
        for k in range(n):
            image = x[k]
            for v, (r, c) in enumerate(visits):
                dx, dy = off[k, v]
                image[r, c], image[r + dy, c + dx] = image[r + dy, c + dx], image[r, c]
    return x[..., 0].reshape(n, h * w)


@pytest.mark.parametrize("h, w, delta, passes", [(12, 12, 1, 2), (16, 11, 2, 1), (20, 20, 4, 2)])
def test_glass_blur_matches_the_reference_loop(h, w, delta, passes):
    got = glass_sources(h, w, delta, passes, 3, np.random.default_rng(7))
    expected = _reference_glass_loop(h, w, delta, passes, 3, seed=7)
    np.testing.assert_array_equal(got, expected)
    assert (got != np.arange(h * w)).mean() > 0.3  # pixels did move
    if delta == 1:  # offsets in {-1, 0}: values only come from up and left, a step a pass
        up = np.arange(h * w) // w - got // w
        left = np.arange(h * w) % w - got % w
        assert up.min() == 0 and left.min() == 0 and up.max() == passes == left.max()


def test_zoom_blur_is_the_mean_of_clipped_zooms():
    """scipy's zoom of the centre crop, as the reference; OpenCV's warp rounds the sample
    positions to 1/32 pixel."""
    x = photos(2, 32)
    expected = x.astype(np.float64).copy()
    factors = np.arange(1, 1.26, 0.01)  # severity 5 at 32 px
    for f in factors:
        crop = int(np.ceil(32 / f))
        top = (32 - crop) // 2
        z = ndi.zoom(x[:, top : top + crop, top : top + crop], (1, f, f, 1), order=1)
        trim = (z.shape[1] - 32) // 2
        expected += z[:, trim : trim + 32, trim : trim + 32]
    expected /= len(factors) + 1
    got = corrupt(x, "zoom_blur", 5)
    assert np.abs(got - expected).max() < 0.01
    assert np.abs(got - expected).mean() < 1e-3


@pytest.mark.parametrize("size", [32, 64])
def test_gaussian_noise_adds_normal_noise_of_the_reference_std(size):
    x = np.full((8, size, size, 3), 0.5, np.float32)
    for severity, c in zip(SEVERITIES, GAUSSIAN_NOISE[size]):
        noise = corrupt(x, "gaussian_noise", severity, seed=severity) - 0.5
        assert noise.std() == pytest.approx(c, rel=0.03)
        assert abs(noise.mean()) < 0.1 * c
        if c <= 0.125:  # 4 sigma inside [0, 1]: clipping is negligible
            assert abs(((noise / c) ** 4).mean() - 3) < 0.2  # normal kurtosis


@pytest.mark.parametrize("size", [32, 64])
def test_shot_noise_is_poisson_photon_noise(size):
    x = np.full((8, size, size, 3), 0.5, np.float32)
    for severity, c in zip(SEVERITIES, SHOT_NOISE[size]):
        out = corrupt(x, "shot_noise", severity)
        assert out.mean() == pytest.approx(0.5, abs=0.01)
        assert out.var() == pytest.approx(0.5 / c, rel=0.05)  # Poisson: variance = mean
        counts = out * c
        np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)  # whole photons


@pytest.mark.parametrize("size", [32, 64])
def test_impulse_noise_salts_and_peppers_a_fraction_c(size):
    x = np.full((8, size, size, 3), 0.5, np.float32)
    for severity, c in zip(SEVERITIES, IMPULSE_NOISE[size]):
        out = corrupt(x, "impulse_noise", severity)
        assert set(np.unique(out)) <= {0.0, 0.5, 1.0}
        assert (out != 0.5).mean() == pytest.approx(c, rel=0.1)
        assert (out == 1).mean() == pytest.approx(c / 2, rel=0.15)


@pytest.mark.parametrize("size", [32, 64])
def test_speckle_noise_is_multiplicative(size):
    x = np.full((8, size, size, 3), 0.4, np.float32)
    for severity, c in zip(SEVERITIES, SPECKLE_NOISE[size]):
        relative = (corrupt(x, "speckle_noise", severity) - 0.4) / 0.4
        assert relative.std() == pytest.approx(c, rel=0.03)


def test_fog_keeps_the_brightest_level_and_lifts_the_darkest():
    """On a uniform grey g, fog gives (g + s f) g / (g + s) with the fractal f spanning
    [0, 1] exactly: the output spans [g^2 / (g + s), g]."""
    g = 0.6
    x = np.full((3, 32, 32, 3), g, np.float32)
    for severity, (s, _) in zip(SEVERITIES, FOG[32]):
        out = corrupt(x, "fog", severity)
        assert out.max(axis=(1, 2, 3)) == pytest.approx([g] * 3, abs=1e-6)
        assert out.min(axis=(1, 2, 3)) == pytest.approx([g * g / (g + s)] * 3, abs=1e-6)
        assert np.allclose(out[..., 0], out[..., 2])  # the fog is grey


def test_frost_blends_a_blue_white_ice_texture():
    black = np.zeros((16, 32, 32, 3), np.float32)
    grey = np.full((16, 32, 32, 3), 0.3, np.float32)
    for severity, (a, b) in zip(SEVERITIES, FROST[32]):
        texture = corrupt(black, "frost", severity, seed=1) / b
        mean = texture.mean(axis=(0, 1, 2))
        assert 0.45 < mean.mean() < 0.85  # the reference photographs: 0.47 - 0.82
        assert mean[2] > mean[1] > mean[0]  # blue-tinted like them
        assert 0.05 < texture.mean(-1).std(axis=(1, 2)).mean() < 0.2  # a texture, not a tint
        assert not np.allclose(texture[0], texture[1])  # each image its own crop
        out = corrupt(grey, "frost", severity, seed=1)
        np.testing.assert_allclose(out, np.clip(a * 0.3 + b * texture, 0, 1), atol=1e-5)


def test_snow_pales_the_image_and_adds_flakes():
    x = photos(8, 32)
    weight = [0.95, 0.9, 0.9, 0.85, 0.8]
    grey = x @ np.array([0.299, 0.587, 0.114], np.float32)
    white = []
    for severity in SEVERITIES:
        c = weight[severity - 1]
        pale = c * x + (1 - c) * np.maximum(x, grey[..., None] * 1.5 + 0.5)
        out = corrupt(x, "snow", severity)
        assert np.all(out >= np.minimum(pale, 1) - 1e-5)  # flakes only brighten
        flakes = (out - np.minimum(pale, 1)).mean(-1)
        white.append((flakes > 0.05).mean())
    assert white[-1] > white[0] > 0  # more snow at higher severity


def test_spatter_adds_water_drops_then_mud():
    black = np.zeros((8, 64, 64, 3), np.float32)
    white = np.ones((8, 64, 64, 3), np.float32)
    for severity in (1, 2, 3):  # water: pale turquoise (175, 238, 238) added
        out = corrupt(black, "spatter", severity)
        wet = out[..., 1] > 0.02
        assert wet.mean() > 0.001
        np.testing.assert_allclose(out[wet][:, 0] / out[wet][:, 1], 175 / 238, rtol=1e-4)
        np.testing.assert_allclose(out[wet][:, 2], out[wet][:, 1], atol=1e-6)
    for severity in (4, 5):  # mud: brown (63, 42, 20) mixed in
        out = corrupt(white, "spatter", severity)
        muddy = out[..., 0] < 0.99
        assert muddy.mean() > 0.001
        mud = np.array([63, 42, 20]) / 255
        m = (1 - out[muddy]) / (1 - mud)  # out = 1 - m (1 - mud) for each channel
        np.testing.assert_allclose(m, m[:, :1].repeat(3, 1), atol=1e-5)


def test_elastic_transform_keeps_a_flat_image_and_moves_a_ramp():
    flat = np.full((4, 32, 32, 3), 0.7, np.float32)
    np.testing.assert_allclose(corrupt(flat, "elastic_transform", 3), flat, atol=1e-6)
    ramp = np.broadcast_to(np.linspace(0, 1, 32, dtype=np.float32)[None, None, :, None], flat.shape)
    for severity in SEVERITIES:
        moved = np.abs(corrupt(ramp, "elastic_transform", severity) - ramp).mean() * 31
        assert 0.2 < moved < 6  # a displacement of a few pixels at 32 px


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_corruption_keeps_shape_dtype_range_and_is_seeded(name):
    x = photos(3, 32)
    for severity in (1, 5):
        out = corrupt(x, name, severity, seed=3)
        assert out.shape == x.shape and out.dtype == np.float32
        assert out.min() >= 0 and out.max() <= 1
        assert np.abs(out - x).mean() > 1e-4
        np.testing.assert_array_equal(out, corrupt(x, name, severity, seed=3))
        if name in RANDOM:
            assert not np.array_equal(out, corrupt(x, name, severity, seed=4))
    scaled = corrupt(x * 255, name, 3, seed=3, value_range=(0, 255))
    np.testing.assert_allclose(scaled / 255, corrupt(x, name, 3, seed=3), atol=2e-5)


# Corruptions that move or mix pixels without adding light or dark: the mean stays.
MEAN_KEEPING = {
    "defocus_blur",
    "glass_blur",
    "motion_blur",
    "zoom_blur",
    "gaussian_blur",
    "pixelate",
    "jpeg_compression",
    "elastic_transform",
    "contrast",
}


@pytest.mark.parametrize("name", CORRUPTIONS)
@pytest.mark.parametrize("size", [64, 100, 224, (40, 72)])
def test_every_corruption_works_on_grayscale_and_any_size(name, size):
    n = 1 if size == 224 else 2
    x = photos(n, size) if isinstance(size, int) else photos(n, max(size))[:, : size[0]]
    gray = x[..., :1]
    for images in (x, gray):
        kept = images.copy()
        for severity in (1, 5):
            out = corrupt(images, name, severity)
            assert out.shape == images.shape and out.dtype == np.float32
            assert 0 <= out.min() and out.max() <= 1
            if not (name == "saturate" and images is gray and severity < 4):
                assert np.abs(out - images).mean() > 1e-4  # (grey has no saturation to scale)
            if name in MEAN_KEEPING:
                assert abs(out.mean() - images.mean()) < 0.03, (severity, out.mean())
        np.testing.assert_array_equal(images, kept)  # the input is never written to


def test_grayscale_follows_the_rgb_definitions():
    gray = photos(2, 32)[..., :1]
    rgb = np.repeat(gray, 3, -1)
    luma = np.array([0.299, 0.587, 0.114], np.float32)
    for name in ("contrast", "brightness", "saturate", "spatter", "frost", "jpeg_compression"):
        expected = corrupt(rgb, name, 5) @ luma
        got = corrupt(gray, name, 5)[..., 0]
        tol = 2 / 255 if name == "jpeg_compression" else 1e-5
        assert np.abs(got - expected).max() <= tol, name
    np.testing.assert_allclose(corrupt(gray, "brightness", 5), np.minimum(gray + 0.3, 1), atol=1e-6)


MONOTONE_EXCEPTIONS = {
    # More blur makes the copied neighbours more alike (at 32 px, severity 5 changes less
    # than 4: same passes, larger sigma).
    "glass_blur",
    # Image weight and frost weight change together: the mean change is nearly flat.
    "frost",
    # Mild severities are large affine warps, severe ones small local distortions.
    "elastic_transform",
    # Water drops (1-3) and mud (4-5) differ in kind.
    "spatter",
    # Severities 1-2 desaturate, 3-5 saturate.
    "saturate",
}


@pytest.mark.parametrize("size", [32, 64])
def test_severity_grows_the_change(size):
    from keras_cnnvis import datasets

    x = datasets.shapes(8, size=size, seed=1)[0]
    for name in CORRUPTIONS:
        if name in MONOTONE_EXCEPTIONS:
            continue
        change = [np.abs(corrupt(x, name, s) - x).mean() for s in SEVERITIES]
        assert change[-1] > 1.2 * change[0], (name, change)
        assert np.all(np.diff(change) >= -2e-3), (name, change)


def test_bad_input_is_refused_with_the_fix():
    x = photos(2, 32)
    with pytest.raises(ValueError, match="Unknown corruption 'fogg'.*gaussian_noise"):
        corrupt(x, "fogg", 1)
    for severity in (0, 6, 2.5, True):
        with pytest.raises(ValueError, match="severity"):
            corrupt(x, "fog", severity)
    with pytest.raises(ValueError, match="grayscale .1. or RGB .3."):
        corrupt(np.zeros((2, 32, 32, 4), np.float32), "fog", 1)
    with pytest.raises(ValueError, match=r"value_range=\(0, 255\)"):
        corrupt(x * 255, "fog", 1)
    with pytest.raises(ValueError, match="batch of images"):
        corrupt(x[0], "fog", 1)
    with pytest.raises(ValueError, match="low < high"):
        corrupt(x, "fog", 1, value_range=(1, 0))
