"""One-off analysis of a trained model (`cnnvis analyze`): every monitor once, at step 0, on
images from a folder, an `.npy`/`.npz` file, a built-in set or arrays.

`data` loads and fits the images to the model; `run` drives `CNNVisCallback` outside `fit`.
"""

from keras_cnnvis.analysis.data import (
    PREPROCESS,
    Images,
    auto_preprocess,
    check_source,
    fit_images,
    load_images,
    prepare,
    preprocess_function,
    to_unit,
)
from keras_cnnvis.analysis.run import Analysis, analyze

__all__ = [
    "PREPROCESS",
    "Analysis",
    "Images",
    "analyze",
    "auto_preprocess",
    "check_source",
    "fit_images",
    "load_images",
    "prepare",
    "preprocess_function",
    "to_unit",
]
