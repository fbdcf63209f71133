"""Confusion-matrix drawing (keras_cnnvis.rendering.confusion): cells coloured by the fraction of
the true class, counts and names that do not run together, cell centres reported in pixels; and
the text drawing of keras_cnnvis.rendering.raster it relies on.
"""

import threading

import matplotlib
import numpy as np

from keras_cnnvis.rendering import raster
from keras_cnnvis.rendering.confusion import render_confusion

LEVEL = 1 / 255 + 1e-6  # one uint8 step


def blues(fraction):
    return np.asarray(matplotlib.colormaps["Blues"](fraction)[:3], np.float32)


def cell_fill(img, centers, t, p, cell):
    """The colour just inside the cell's top-left corner (away from the centred count)."""
    r, c = centers[t, p]
    return img[int(r - cell / 2) + 2, int(c - cell / 2) + 2]


def ink_runs(profile, bridge=0):
    """`(start, stop)` of the runs of True in a 1-D boolean profile; gaps of at most
    `bridge` False entries do not split a run."""
    padded = np.r_[False, profile, False].astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    runs = [list(r) for r in zip(edges[::2], edges[1::2])]
    merged = runs[:1]
    for a, b in runs[1:]:
        if a - merged[-1][1] <= bridge:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [tuple(r) for r in merged]


def test_rendered_matrix_colours_cells_by_fraction():
    img, centers = render_confusion(np.array([[9, 0], [1, 3]]), ["yes", "no"], "t")
    assert img.dtype == np.float32 and img.shape[2] == 3 and 0 <= img.min() and img.max() <= 1
    assert centers.shape == (2, 2, 2)

    def cell(t, p):  # mean colour of a small square just off the cell centre (avoids the text)
        r, c = (int(v) for v in centers[t, p])
        return img[r - 18 : r - 12, c - 18 : c - 12].mean(axis=(0, 1))

    # Fractions of the true class: 1.0, 0.0 / 0.25, 0.75 -> darker blue for larger ones.
    assert cell(0, 0).sum() < 1.0 and cell(0, 1).min() > 0.9
    assert cell(0, 0).sum() < cell(1, 1).sum() < cell(1, 0).sum() < cell(0, 1).sum()
    bigger, _ = render_confusion(np.eye(12, dtype=int), [f"class {i}" for i in range(12)])
    assert bigger.shape[0] > img.shape[0] and bigger.shape[1] > img.shape[1]


def test_each_cell_has_matplotlibs_blues_colour_of_its_row_fraction():
    matrix = np.array([[5, 0, 0], [1, 2, 1], [0, 3, 9], [0, 0, 0]])[:3]
    img, centers = render_confusion(matrix, ["a", "b", "c"])
    cell = int(round(centers[0, 1, 1] - centers[0, 0, 1]))
    fractions = matrix / matrix.sum(axis=1, keepdims=True)
    for t in range(3):
        for p in range(3):
            np.testing.assert_allclose(
                cell_fill(img, centers, t, p, cell), blues(fractions[t, p]), atol=LEVEL
            )
    # The full row (5 of 5) is the colormap's top colour, an empty cell its bottom one.
    np.testing.assert_allclose(cell_fill(img, centers, 0, 0, cell), blues(1.0), atol=LEVEL)
    np.testing.assert_allclose(cell_fill(img, centers, 0, 1, cell), blues(0.0), atol=LEVEL)
    # The centre is the middle of a block of one colour `cell` pixels wide.
    r, c = (int(v) for v in centers[1, 1])
    row = np.abs(img[r - cell // 2 + 2, :] - blues(0.5)).max(-1) < LEVEL
    start, stop = next((a, b) for a, b in ink_runs(row) if a <= c < b)
    assert stop - start == cell and abs((start + stop) / 2 - centers[1, 1, 1]) <= 0.5


def test_a_class_without_examples_shows_zero_fractions():
    img, centers = render_confusion(np.array([[4, 0], [0, 0]]), ["seen", "never"])
    cell = int(round(centers[0, 1, 1] - centers[0, 0, 1]))
    for p in range(2):
        np.testing.assert_allclose(cell_fill(img, centers, 1, p, cell), blues(0.0), atol=LEVEL)


def test_counts_are_written_white_on_dark_cells_and_black_on_light_ones():
    matrix = np.array([[90, 10], [30, 70]])
    img, centers = render_confusion(matrix, ["a", "b"])
    for t, p, dark in [(0, 0, True), (0, 1, False), (1, 0, False), (1, 1, True)]:
        r, c = (int(v) for v in centers[t, p])
        patch = img[r - 8 : r + 8, c - 14 : c + 14]
        fill = blues(matrix[t, p] / matrix[t].sum())
        ink = np.abs(patch - fill).max(-1) > 0.3
        assert ink.sum() > 20, (t, p)  # the digits are there
        if dark:  # white digits: pure white strokes, nothing darker than the fill
            assert patch.min(-1).max() > 0.97 and (patch >= fill - LEVEL).all(), (t, p)
        else:  # black digits: pure black strokes, nothing lighter than the fill
            assert patch.max(-1).min() < 0.03 and (patch <= fill + LEVEL).all(), (t, p)
    wider, centers_w = render_confusion(np.array([[12345, 0], [0, 1]]), ["a", "b"])
    r, c = (int(v) for v in centers_w[0, 0])
    assert (np.abs(wider[r - 8 : r + 8, c - 30 : c + 30] - blues(1.0)).max(-1) > 0.3).sum() > (
        np.abs(img[r - 8 : r + 8, c - 30 : c + 30] - blues(0.9)).max(-1) > 0.3
    ).sum()


def test_hundred_class_names_are_all_written_without_running_together():
    n = 100
    img, centers = render_confusion(np.eye(n, dtype=int) * 5, [f"class_{i}_name" for i in range(n)])
    cell = centers[0, 1, 1] - centers[0, 0, 1]
    top, left = int(centers[0, 0, 0] - cell / 2), int(centers[0, 0, 1] - cell / 2)
    bottom, right = top + int(n * cell), left + int(n * cell)
    ink = img.min(-1) < 0.5
    # Row names (right-aligned): left of the matrix, one run of dark pixel rows per class,
    # at least 2 blank rows apart (an underscore may sit one row below its letters).
    row_runs = ink_runs(ink[top:bottom, left - 40 : left - 6].any(axis=1), bridge=1)
    assert len(row_runs) == n
    for i, (a, b) in enumerate(row_runs):
        assert a <= centers[i, 0, 0] - top <= b
    # Column names: below the matrix (upright text turned a quarter), one run per class.
    col_runs = ink_runs(ink[bottom + 6 : bottom + 40, left:right].any(axis=0), bridge=1)
    assert len(col_runs) == n
    assert all(a <= centers[0, i, 1] - left <= b for i, (a, b) in enumerate(col_runs))


def test_too_many_classes_to_name_write_every_kth_name_apart():
    n = 400  # 4-pixel cells: a name every 3rd class keeps the lines apart
    img, centers = render_confusion(np.eye(n, dtype=int), [f"c{i}" for i in range(n)])
    cell = centers[0, 1, 1] - centers[0, 0, 1]
    assert cell == 4 and img.shape[0] < 1800
    top, left = int(centers[0, 0, 0] - cell / 2), int(centers[0, 0, 1] - cell / 2)
    runs = ink_runs((img[top : top + n * 4, left - 16 : left - 6].min(-1) < 0.5).any(axis=1), 1)
    assert len(runs) == len(range(0, n, 3))


def test_long_names_are_cut_short_with_an_ellipsis():
    short, _ = render_confusion(np.eye(2, dtype=int), ["a", "b"])
    long_, centers = render_confusion(np.eye(2, dtype=int), ["x" * 300, "b"])
    assert long_.shape[1] - short.shape[1] < 200  # not 300 letters wide
    name = raster.fit_text("x" * 300, 13, 150)
    assert name.endswith("\u2026") and raster.text_width(name, 13) <= 150
    assert raster.fit_text("short", 13, 150) == "short"


def test_text_lines_share_a_baseline_and_descenders_go_below_it():
    x_alpha, x_pen, x_base = raster.text_bitmap("x", 13)
    g_alpha, _, g_base = raster.text_bitmap("g", 13)
    x_rows = np.flatnonzero(x_alpha.max(1) > 127)
    g_rows = np.flatnonzero(g_alpha.max(1) > 127)
    assert x_rows.max() == x_base - 1  # "x" sits on the baseline
    assert g_rows.max() - g_base >= 2  # "g" hangs below it
    assert x_alpha.shape[0] == g_alpha.shape[0] == raster.line_height(13)
    # Text placed with va="baseline" puts the baseline on the given row.
    canvas = raster.Canvas(60, 40)
    canvas.text("x", 10, 30, 13)
    assert np.flatnonzero(canvas.pixels.min(-1).min(1) < 128).max() == 29
    assert raster.text_width("xx", 13) > raster.text_width("x", 13) and x_pen == 0


def test_drawing_from_two_threads_gives_the_serial_pictures():
    jobs = [
        (np.random.default_rng(i).integers(0, 50, (6, 6)), [f"name {i}.{j}" for j in range(6)])
        for i in range(8)
    ]
    serial = [render_confusion(m, names, f"t{i}")[0] for i, (m, names) in enumerate(jobs)]
    raster._glyph.cache_clear()
    raster.text_bitmap.cache_clear()
    parallel = [None] * len(jobs)

    def work(indices):
        for i in indices:
            parallel[i] = render_confusion(jobs[i][0], jobs[i][1], f"t{i}")[0]

    threads = [threading.Thread(target=work, args=(range(k, len(jobs), 2),)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)


def test_old_import_path_still_gives_the_renderer():
    from keras_cnnvis.callbacks.confusion_matrix import render_confusion as old

    assert old is render_confusion
