"""Known TensorFlow traps a model can walk into: layers whose gradient crashes TensorFlow's
oneDNN kernels, whether those kernels are on, and a warning (once per model) naming the fix.
"""

from __future__ import annotations

import os
import platform
import sys
import warnings
import weakref
from dataclasses import dataclass
from typing import Iterable, Mapping

import keras

from keras_cnnvis.model.layers import iter_layers

ENV_VAR = "TF_ENABLE_ONEDNN_OPTS"

MIN_CHANNELS = 16
"""oneDNN's channel block on AVX-512 CPUs: strided 1x1 convolutions with fewer channels in the
tensor their weight gradient reads overrun a workspace (8 on AVX2-only CPUs; 16 covers both)."""

# Layers whose weight gradient runs oneDNN's 1x1 convolution kernel with a stride (Conv1D runs
# as a 2-D convolution). For a transposed convolution the gradient reads its output, so the
# channels that count are its filters; both are `kernel.shape[-2]`. Measured with TF 2.21 on
# AVX-512 VNNI: Conv2D, Conv1D and Conv2DTranspose crash; DepthwiseConv2D, SeparableConv2D
# and Conv3D with a 1x1 strided kernel do not.
TRAP_TYPES = (
    keras.layers.Conv1D,
    keras.layers.Conv2D,
    keras.layers.Conv1DTranspose,
    keras.layers.Conv2DTranspose,
)

# CPU features for which TensorFlow's Linux builds turn oneDNN on by default
# (`DefaultOneDnnPolicy` in tensorflow/core/util/port.cc), as /proc/cpuinfo spells them;
# "neoverse_v1" stands for an Arm Neoverse V1 (implementer 0x41, part 0xd40).
ONEDNN_CPU_FEATURES = frozenset(
    {"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16", "neoverse_v1"}
)

_WARNED: "weakref.WeakSet" = weakref.WeakSet()


@dataclass(frozen=True)
class TrapLayer:
    """A layer whose gradient runs into the oneDNN strided 1x1 convolution bug.

    Attributes:
        path: the layer's path (nested models joined by `/`).
        kind: its class name.
        channels: the channels its weight gradient reads (input channels per group; the
            filters of a transposed convolution).
        strides: its strides.
    """

    path: str
    kind: str
    channels: int
    strides: tuple

    def __str__(self) -> str:
        return f"'{self.path}' ({self.kind}, {self.channels} channels, strides {self.strides})"


def onednn_trap_layers(model: keras.Model) -> list[TrapLayer]:
    """The layers of `model` (nested models included) that hit the oneDNN 1x1 stride bug.

    TensorFlow 2.21's oneDNN kernels write past a workspace in the weight gradient of a
    1x1 convolution with a stride above 1 when the tensor that gradient reads has fewer than
    16 channels (uxlfoundation/oneDNN#6035): the process crashes (a segfault, no Python
    error) or memory is silently corrupted, in training and in gradient-based
    visualisations alike. Layers that were never built (no kernel yet) are not listed.

    Example:

    ```python
    for layer in onednn_trap_layers(model):
        print(layer)          # 'shortcut' (Conv2D, 8 channels, strides (2, 2))
    ```

    Args:
        model: a Keras model of any kind.

    Returns:
        The `TrapLayer`s, in forward order.
    """
    found = []
    for info in iter_layers(model):
        layer = info.layer
        if not isinstance(layer, TRAP_TYPES) or getattr(layer, "kernel", None) is None:
            continue
        kernel = tuple(int(k) for k in layer.kernel_size)
        strides = tuple(int(s) for s in layer.strides)
        channels = int(layer.kernel.shape[-2])
        if all(k == 1 for k in kernel) and max(strides) > 1 and channels < MIN_CHANNELS:
            found.append(TrapLayer(info.path, type(layer).__name__, channels, strides))
    return found


def cpu_features() -> frozenset:
    """This machine's CPU feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return frozenset()
    flags: set = set()
    fields: dict = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("flags", "features"):
            flags.update(value.split())
        elif key in ("cpu implementer", "cpu part"):
            fields[key] = value.strip().lower()
    if fields.get("cpu implementer") == "0x41" and fields.get("cpu part") == "0xd40":
        flags.add("neoverse_v1")
    return frozenset(flags)


def parse_onednn_setting(value: str | None, default: bool) -> bool:
    """What TensorFlow makes of a `TF_ENABLE_ONEDNN_OPTS` value.

    `"0"`/`"false"` turn oneDNN off and `"1"`/`"true"` on (any case); unset, empty or
    any other value keeps the default (TensorFlow logs a warning for those).

    Example:

    ```python
    parse_onednn_setting("False", default=True)   # False
    parse_onednn_setting("yes", default=True)     # True: not a value TF reads
    ```

    Args:
        value: the variable's value, or None when unset.
        default: TensorFlow's default for this machine (see `onednn_enabled`).

    Returns:
        Whether oneDNN is on.
    """
    if value is None:
        return default
    text = value.lower()
    if text in ("0", "false"):
        return False
    if text in ("1", "true"):
        return True
    return default


def onednn_default(features: Iterable[str], system: str, machine: str) -> bool:
    """TensorFlow's default (`TF_ENABLE_ONEDNN_OPTS` unset) for a platform and CPU.

    Since TF 2.9: on for x86 Windows; on Linux only for CPUs with neural-network
    features (AVX512-VNNI, AVX512-BF16, AVX-VNNI, AMX, or an Arm Neoverse V1); off elsewhere
    (macOS builds have no oneDNN).

    Args:
        features: CPU feature flags as /proc/cpuinfo names them (see `cpu_features`).
        system: `platform.system()`.
        machine: `platform.machine()`.

    Returns:
        Whether oneDNN is on by default.
    """
    if system == "Windows":
        return machine.lower() in ("amd64", "x86_64", "x86", "i386", "i686")
    if system == "Linux":
        return bool(ONEDNN_CPU_FEATURES & {f.lower() for f in features})
    return False


def _tensorflow_says() -> bool | None:
    """TensorFlow's own answer, fixed when it was imported; None if it is not imported."""
    if "tensorflow" not in sys.modules:
        return None
    try:  # not public API: fall back to the rule if it ever moves
        from tensorflow.python.util import _pywrap_util_port

        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:
        return None


def onednn_enabled(
    environ: Mapping[str, str] | None = None,
    features: Iterable[str] | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> bool:
    """Whether TensorFlow's oneDNN kernels are (or would be) on.

    With no arguments: TensorFlow's own answer once it is imported (TensorFlow reads
    `TF_ENABLE_ONEDNN_OPTS` once, at import, so changing the variable later changes
    nothing), else the rule below applied to this process and machine. With arguments,
    the rule alone, anything not given taken from this process and machine: the
    variable's value (`parse_onednn_setting`) over the platform's default
    (`onednn_default`).

    Example:

    ```python
    onednn_enabled({"TF_ENABLE_ONEDNN_OPTS": "0"})                       # False
    onednn_enabled({}, features={"avx512_vnni"}, system="Linux", machine="x86_64")  # True
    ```

    Args:
        environ: environment variables. Defaults to None (`os.environ`).
        features: CPU feature flags. Defaults to None (this machine's).
        system: `platform.system()` value. Defaults to None (this machine's).
        machine: `platform.machine()` value. Defaults to None (this machine's).

    Returns:
        Whether oneDNN is on.
    """
    if environ is features is system is machine is None:
        answer = _tensorflow_says()
        if answer is not None:
            return answer
    environ = os.environ if environ is None else environ
    default = onednn_default(
        cpu_features() if features is None else features,
        platform.system() if system is None else system,
        platform.machine() if machine is None else machine,
    )
    return parse_onednn_setting(environ.get(ENV_VAR), default)


def warn_onednn_trap(model: keras.Model, where: str, enabled: bool | None = None) -> list:
    """Warns once per model when it has `onednn_trap_layers` and oneDNN is on.

    The warning names the layers and the fix: `TF_ENABLE_ONEDNN_OPTS=0` set in the
    environment before TensorFlow is imported. Later calls for the same model stay silent.

    Example:

    ```python
    warn_onednn_trap(model, "cnnvis analyze")
    ```

    Args:
        model: the model.
        where: who is asking, as the warning's prefix (e.g. `"CNNVisCallback"`).
        enabled: whether oneDNN is on. Defaults to None (`onednn_enabled()`).

    Returns:
        The trap layers found (also when no warning was given), or an empty list when
        oneDNN is off or the backend is not TensorFlow.
    """
    if keras.backend.backend() != "tensorflow":
        return []
    if not (onednn_enabled() if enabled is None else enabled):
        return []
    layers = onednn_trap_layers(model)
    if layers and model not in _WARNED:
        _WARNED.add(model)
        names = "; ".join(str(layer) for layer in layers)
        warnings.warn(
            f"{where}: model '{model.name}' has strided 1x1 convolutions reading fewer than "
            f"{MIN_CHANNELS} channels: {names}. With TensorFlow's oneDNN kernels on (as "
            "now), their gradient can crash the process or corrupt memory (a segfault "
            "without a Python error; uxlfoundation/oneDNN#6035), in training and in "
            f"gradient-based visualisations. Fix: set {ENV_VAR}=0 in the environment "
            f"before TensorFlow is imported (`{ENV_VAR}=0 python train.py`, or "
            f"os.environ['{ENV_VAR}'] = '0' at the top of the script, before importing "
            f"tensorflow or keras), or give those layers at least {MIN_CHANNELS} input "
            "channels.",
            RuntimeWarning,
            stacklevel=2,
        )
    return layers
