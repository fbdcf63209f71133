"""Shared by the feature-space tests: seeded Gaussian blobs with labels, and a werkzeug client
over TensorBoard's stock Projector plugin to read Projector data back the way the tab does."""

import cv2
import numpy as np
from tensorboard.plugins.projector.projector_plugin import ProjectorPlugin

from plugin_fixtures import make_client

PREFIX = "/data/plugin/projector"


def blobs(n_per, centres, spread, seed):
    """`n_per` Gaussian points around each centre (std `spread`) and their class labels."""
    rng = np.random.default_rng(seed)
    centres = np.asarray(centres, np.float64)
    labels = np.repeat(np.arange(len(centres)), n_per)
    return centres[labels] + rng.normal(size=(len(labels), centres.shape[1])) * spread, labels


def projector_client(logdir):
    """A werkzeug client over TensorBoardWSGI serving only the stock Projector plugin."""
    return make_client(logdir, None, plugin=ProjectorPlugin)


def get(client, route, **params):
    response = client.get(f"{PREFIX}/{route}", query_string=params)
    assert response.status_code == 200, (route, params, response.get_data(as_text=True))
    return response


def served_tensor(client, run, name, shape):
    data = get(client, "tensor", run=run, name=name).get_data()
    return np.frombuffer(data, np.float32).reshape(shape)


def decode_png(data):
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    return img[..., ::-1] if img.ndim == 3 else img
