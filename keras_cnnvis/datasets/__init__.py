"""Built-in data: synthetic shapes with object masks (`synthetic`), scikit-learn digits,
keras.datasets and image folders (`loaders`), all as float32 channels-last arrays in [0, 1].
"""

from keras_cnnvis.datasets.synthetic import SHAPE_CLASSES, shapes
from keras_cnnvis.datasets.loaders import (
    DATASET_NAMES,
    IMAGE_EXTENSIONS,
    KERAS_DATASETS,
    digits,
    from_uint8,
    image_folder,
    keras_dataset,
    load,
)

__all__ = [
    "SHAPE_CLASSES",
    "KERAS_DATASETS",
    "IMAGE_EXTENSIONS",
    "DATASET_NAMES",
    "shapes",
    "digits",
    "keras_dataset",
    "image_folder",
    "load",
]
