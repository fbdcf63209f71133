"""patches.views: the guided-backprop view of a unit on its patch alone equals guided backprop
of the unit on the whole image, cut to the patch.
"""

import numpy as np

from keras_cnnvis.rendering import image
from keras_cnnvis.attribution import guided_backprop
from keras_cnnvis.demo import build_demo_model
from keras_cnnvis.patches import max_activating_patches, unit_views


def test_unit_view_on_the_patch_equals_guided_backprop_on_the_whole_image(shapes_small):
    model = build_demo_model((64, 64, 3), 5, seed=1)
    x = shapes_small[0][:40]
    top = max_activating_patches(model, "conv3", x, channels=[2, 7], k=3)
    views = unit_views(model, top)
    assert views.shape == top.patches.shape
    rf = top.receptive_field
    for row, ch in enumerate(top.channels):
        for slot in range(3):
            r, c = (int(v) for v in top.positions[row, slot])
            full = guided_backprop(
                model, x[top.indices[row, slot]][None], target=("conv3", ch, r, c), reduce=None
            )[0]
            wt, wl, _, _ = rf.window(r, c)
            t, l, b, rr = top.boxes[row, slot]
            # The whole image's gradient lies inside the box ...
            outside = full.copy()
            outside[t:b, l:rr] = 0
            assert not outside.any()
            expected = np.zeros(rf.size + (3,), np.float32)
            expected[t - wt : b - wt, l - wl : rr - wl] = full[t:b, l:rr]
            assert np.abs(expected).max() > 0
            # ... and the view of the patch alone is the same map.
            np.testing.assert_allclose(
                views[row, slot],
                image.normalize(expected[None], mode="symmetric", axis=(1, 2, 3))[0],
                atol=1e-4,
            )
