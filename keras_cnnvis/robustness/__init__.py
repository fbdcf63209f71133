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

__all__ = [
    "BENCHMARK",
    "CORRUPTIONS",
    "FAMILIES",
    "HELD_OUT",
    "SEVERITIES",
    "corrupt",
]
