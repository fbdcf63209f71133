"""BLAS threads for small numpy products: one thread, which is many times faster than threaded
OpenBLAS for small matrices on a busy machine. No TensorFlow import."""

from __future__ import annotations

import contextlib
import functools


@functools.lru_cache(maxsize=1)
def _controller():
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - scikit-learn installs it
        return None
    return ThreadpoolController()


def one_blas_thread():
    """A context with BLAS on one thread (a no-op without threadpoolctl)."""
    controller = _controller()
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")
