"""User data to arrays and classes, in one place: image checks (one rule, one message style),
batches from numpy / tf.data / generators, labels (sparse, one-hot, per-pixel), predicted
classes of any classifier head, and balanced picks over classes. Nothing else in keras-cnnvis
validates images or thresholds outputs.
"""

from keras_cnnvis.inputs.images import (
    as_image_array,
    check_image_shape,
    check_images,
    data_length,
    image_batches,
    labelled_arrays,
)
from keras_cnnvis.inputs.labels import (
    balanced_indices,
    binary_threshold,
    check_class_range,
    class_labels,
    class_scores,
    is_pixel_labels,
    n_classes_of,
    pixel_labels,
    predicted_classes,
)

__all__ = [
    "as_image_array",
    "balanced_indices",
    "binary_threshold",
    "check_class_range",
    "check_image_shape",
    "check_images",
    "class_labels",
    "class_scores",
    "data_length",
    "image_batches",
    "is_pixel_labels",
    "labelled_arrays",
    "n_classes_of",
    "pixel_labels",
    "predicted_classes",
]
