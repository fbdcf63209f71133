"""Argument checks shared by the dataset generators and loaders."""

from __future__ import annotations

import numpy as np


def check_int(value, name: str, minimum: int, fix: str) -> int:
    """`value` as an int, or a ValueError naming `name`, the minimum and `fix`."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"`{name}` must be an integer, got {value!r}. {fix}")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}. {fix}")
    return int(value)
