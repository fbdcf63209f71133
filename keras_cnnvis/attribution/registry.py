"""The attribution-method registry: each method is declared once, beside its function, with
what the callbacks and the cnnvis tab need to offer, check, run and display it.

A new method is one file (its function under `@register(...)`), one import line in
`keras_cnnvis/attribution/__init__.py` and one test file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import keras

from keras_cnnvis.attribution._common import spatial_layer
from keras_cnnvis.model import relu_sites

FAMILIES = ("cam", "gradient", "occlusion")
"""The callback that offers a method: `"cam"` `GradCAMCallback`, `"gradient"`
`SaliencyCallback`, `"occlusion"` `OcclusionCallback`."""

DISPLAYS = ("smooth", "gradient")
"""How maps are scaled for display: `"smooth"` maps by their maximum, spiky `"gradient"`
maps by their 99th percentile (see `keras_cnnvis.rendering.attribution.display_maps`)."""


@dataclass(frozen=True)
class Method:
    """One attribution method and everything the callbacks need to know about it.

    Attributes:
        name: the method's name (`methods=` of the callbacks, the `<method>` of the tags
            `attribution/<method>` and `json/attribution/<method>`).
        fn: `fn(model, images, target=None, **kwargs) -> float32 (N, H, W) maps`.
        family: the callback that offers it, one of `FAMILIES`.
        needs_layer: it reads a layer's feature maps: callbacks pass their `layer=`,
            checked to have a spatial output before training.
        display: `"smooth"` or `"gradient"` (see `DISPLAYS`).
        needs_relu: it overrides ReLU gradients, so models without an overridable ReLU
            are refused before training.
        validate: `validate(model, probe, **kwargs)` raising ValueError for settings or a
            model the method cannot handle (e.g. CAM without a GAP + Dense head), or None.
        options: the callback settings passed to `fn` as keyword arguments, e.g.
            `("steps", "baseline")`; `"layer"` is implied by `needs_layer`.
        defaults: keyword arguments of `fn` the callbacks pass unless a setting
            overrides them.
    """

    name: str
    fn: Callable
    family: str
    needs_layer: bool = False
    display: str = "gradient"
    needs_relu: bool = False
    validate: Callable | None = None
    options: tuple = ()
    defaults: Mapping = field(default_factory=dict)

    def kwargs(self, settings: Mapping[str, Any]) -> dict:
        """The keyword arguments of `fn` from a callback's `settings`: the defaults,
        overridden by the settings this method takes."""
        taken = tuple(self.options) + (("layer",) if self.needs_layer else ())
        return {**self.defaults, **{k: settings[k] for k in taken if k in settings}}

    def check(self, model: keras.Model, probe: Any, **kwargs: Any) -> None:
        """Checks that the method can run on `model` and `probe` with `kwargs`.

        Raises:
            ValueError: for a layer without spatial output (methods that need a layer),
                a model without overridable ReLU (methods that need one), or whatever
                `validate` refuses.
        """
        if self.needs_layer:
            spatial_layer(model, kwargs.get("layer", "feature_map"), self.name)
        if self.needs_relu and not relu_sites(model):
            raise ValueError(
                f"{self.name} needs ReLU activations; model '{model.name}' has none that can "
                "be overridden (activation='relu' or ReLU layers). Choose another method."
            )
        if self.validate is not None:
            self.validate(model, probe, **kwargs)


REGISTRY: dict[str, Method] = {}
"""Method name -> `Method`, in registration order."""

_FUNCTIONS: dict[str, Callable] = {}
FUNCTIONS: Mapping[str, Callable] = MappingProxyType(_FUNCTIONS)
"""A read-only live view: method name -> its function."""


def register(
    name: str,
    family: str,
    needs_layer: bool = False,
    display: str = "gradient",
    needs_relu: bool = False,
    validate: Callable | None = None,
    options: Sequence[str] = (),
    defaults: Mapping[str, Any] | None = None,
    replace: bool = False,
) -> Callable[[Callable], Callable]:
    """Registers the decorated function as the attribution method `name`.

    Example:

    ```python
    @register("edges", family="gradient")
    def edges(model, images, target=None):
        return np.abs(np.gradient(images.mean(-1), axis=(1, 2))).sum(0)

    SaliencyCallback(log_dir, probe, methods=("saliency", "edges"))
    ```

    Args:
        name: the method's name.
        family: the callback that offers it, one of `FAMILIES`.
        needs_layer: it takes `layer=` (a layer with spatial output). Defaults to False.
        display: `"smooth"` or `"gradient"`. Defaults to `"gradient"`.
        needs_relu: it needs overridable ReLUs. Defaults to False.
        validate: `validate(model, probe, **kwargs)`, raising ValueError for what the
            method cannot handle. Defaults to None.
        options: the callback settings it takes as keyword arguments. Defaults to ().
        defaults: keyword arguments the callbacks pass. Defaults to None (none).
        replace: allow replacing a registered method of the same name.
            Defaults to False.

    Returns:
        A decorator that registers the function and returns it unchanged.

    Raises:
        ValueError: for an unknown family or display, or a name already registered
            (without `replace=True`).
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}; got {family!r}.")
    if display not in DISPLAYS:
        raise ValueError(f"display must be one of {DISPLAYS}; got {display!r}.")
    if name in REGISTRY and not replace:
        raise ValueError(
            f"An attribution method named {name!r} is registered already; unregister it "
            "first or pass replace=True."
        )

    def decorator(fn: Callable) -> Callable:
        REGISTRY[name] = Method(
            name,
            fn,
            family,
            bool(needs_layer),
            display,
            bool(needs_relu),
            validate,
            tuple(options),
            MappingProxyType(dict(defaults or {})),
        )
        _FUNCTIONS[name] = fn
        return fn

    return decorator


def unregister(name: str) -> None:
    """Removes the method `name` (e.g. at the end of a test); unknown names are ignored."""
    REGISTRY.pop(name, None)
    _FUNCTIONS.pop(name, None)


def lookup(name: str) -> Method:
    """The registered `Method` called `name`.

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    if name not in REGISTRY:
        raise ValueError(f"Unknown attribution method {name!r}; use one of {sorted(REGISTRY)}.")
    return REGISTRY[name]


def get_method(name: str | Callable) -> Callable:
    """The attribution function called `name` (a callable is returned as it is).

    Raises:
        ValueError: for an unknown name (the message lists the known ones).
    """
    return name if callable(name) else lookup(name).fn


def names(family: str | None = None, display: str | None = None) -> tuple:
    """The registered method names, in registration order, of one family and/or display
    style (None: any)."""
    return tuple(
        m.name
        for m in REGISTRY.values()
        if (family is None or m.family == family) and (display is None or m.display == display)
    )


def choose(
    methods: str | Sequence[str],
    family: str | None,
    owner: str,
    allowed: Sequence[str] | None = None,
) -> list[str]:
    """`methods` as a list of names, each a registered method of `family` (or one of
    `allowed` when given).

    Raises:
        ValueError: naming `owner` and the methods it offers, for an empty choice or a
            method of another family.
    """
    chosen = [methods] if isinstance(methods, str) else list(methods)
    allowed = names(family) if allowed is None else tuple(allowed)
    if not chosen or any(m not in allowed for m in chosen):
        raise ValueError(f"{owner} methods must be some of {allowed}; got {methods!r}.")
    return chosen
