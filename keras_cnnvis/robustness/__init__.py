"""Robustness: the common corruptions of Hendrycks & Dietterich (2019), the published
CIFAR-10-C / Tiny-ImageNet-C sets, and accuracy under corruption and adversarial attack.
"""

from keras_cnnvis.robustness.corruptions import (
    BENCHMARK,
    CORRUPTIONS,
    FAMILIES,
    HELD_OUT,
    SEVERITIES,
    corrupt,
)
from keras_cnnvis.robustness.measures import (
    ClassPredictor,
    CorruptionAccuracy,
    adversarial_accuracy,
    corruption_accuracy,
)
from keras_cnnvis.robustness.mce import CorruptionError, corruption_error
from keras_cnnvis.robustness.published import load_corrupted

__all__ = [
    "BENCHMARK",
    "CORRUPTIONS",
    "ClassPredictor",
    "CorruptionAccuracy",
    "CorruptionError",
    "FAMILIES",
    "HELD_OUT",
    "SEVERITIES",
    "adversarial_accuracy",
    "corrupt",
    "corruption_accuracy",
    "corruption_error",
    "load_corrupted",
]
