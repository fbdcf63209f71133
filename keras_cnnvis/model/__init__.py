"""The model plumbing: everything that touches a Keras model's internals lives here.

Layer lookup and paths (`layers`), the one `layer.call` patcher and output capture (`calls`),
compiled calls and feature extractors (`compiled`), temporary overrides such as guided ReLUs
and a linear output (`overrides`), the compiled gradient seam (`gradients`) and receptive
fields (`receptive_field`). Nothing outside this package opens a `tf.GradientTape` or patches
a layer: it is the seam where a second Keras backend would plug in.
"""

from keras_cnnvis.model.layers import (
    CONV_TYPES,
    LayerRef,
    LayerInfo,
    check_image_model,
    conv_layers,
    find_layer,
    find_layers,
    input_shape,
    is_conv,
    is_trainable,
    iter_layers,
)
from keras_cnnvis.model.calls import (
    capture_outputs,
    forward_until,
    patched,
    restore_calls,
    wrap_calls,
)
from keras_cnnvis.model.compiled import (
    BatchFunction,
    FeatureExtractor,
    instance_function,
    predict_fn,
)
from keras_cnnvis.model.overrides import (
    RELU_OVERRIDES,
    OutputActivation,
    model_overrides,
    output_activation,
    relu_sites,
)
from keras_cnnvis.model.gradients import (
    GradientFunction,
    GradientResult,
    check_in_graph,
    gradient_function,
    value_and_gradients,
)

__all__ = [
    "BatchFunction",
    "CONV_TYPES",
    "FeatureExtractor",
    "GradientFunction",
    "GradientResult",
    "LayerInfo",
    "LayerRef",
    "OutputActivation",
    "RELU_OVERRIDES",
    "capture_outputs",
    "check_image_model",
    "check_in_graph",
    "conv_layers",
    "find_layer",
    "find_layers",
    "forward_until",
    "gradient_function",
    "input_shape",
    "instance_function",
    "is_conv",
    "is_trainable",
    "iter_layers",
    "model_overrides",
    "output_activation",
    "patched",
    "predict_fn",
    "relu_sites",
    "restore_calls",
    "value_and_gradients",
    "wrap_calls",
]
