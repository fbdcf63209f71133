"""Confusion-matrix drawing (keras_cnnvis.rendering.confusion): cells coloured by the fraction of
the true class, cell centres reported in pixels, the figure growing with the classes.
"""

import numpy as np

from keras_cnnvis.rendering.confusion import render_confusion


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


def test_old_import_path_still_gives_the_renderer():
    from keras_cnnvis.callbacks.confusion_matrix import render_confusion as old

    assert old is render_confusion
