"""The cnnvis TensorBoard plugin: HTTP routes over keras-cnnvis records and the dashboard assets.

Loaded by TensorBoard through the `tensorboard_plugins` entry point; imports neither TF nor Keras.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from werkzeug import wrappers

from tensorboard import errors
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.plugins import base_plugin

from tensorboard_plugin_cnnvis import reader as reader_lib
from tensorboard_plugin_cnnvis.reader import RequestError, parse_uint, require

PLUGIN_NAME = "cnnvis"
MAX_SCALAR_TAGS = 64

_STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css"}


def _static_assets() -> dict[str, tuple[str, str]]:
    """Maps `/<file name>` to (path, content type) for the files shipped in `static/`."""
    assets = {}
    for name in sorted(os.listdir(_STATIC_DIR)):
        content_type = _STATIC_TYPES.get(os.path.splitext(name)[1])
        path = os.path.join(_STATIC_DIR, name)
        if content_type and os.path.isfile(path):
            assets["/" + name] = (path, content_type)
    return assets


class CNNVisPlugin(base_plugin.TBPlugin):
    """The "cnnvis" dashboard: filters, health, activations, patches, attribution, embeddings.

    TensorBoard wraps this `TBPlugin` subclass in a `BasicLoader` when it is listed under the
    `tensorboard_plugins` entry point. All data is read through `context.data_provider`.

    Args:
        context: the `base_plugin.TBContext` TensorBoard passes to plugins.
    """

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        self._reader = reader_lib.LogReader(context.data_provider, context.sampling_hints)
        self._assets = _static_assets()

    def get_plugin_apps(self) -> dict[str, Callable]:
        """Returns the plugin's routes (served under `/data/plugin/cnnvis`)."""
        apps = {
            "/runs": _json_app(self._runs),
            "/tags": _json_app(self._tags),
            "/steps": _json_app(self._steps),
            "/image": _app(self._image),
            "/data": _json_app(self._data),
            "/scalars": _json_app(self._scalars),
        }
        for route, (path, content_type) in self._assets.items():
            apps[route] = _file_app(path, content_type)
        return apps

    def is_active(self) -> bool:
        """Returns False: activity comes from `data_plugin_names` via the data provider."""
        return False

    def data_plugin_names(self) -> tuple[str, ...]:
        """The summary plugin whose presence activates the tab (structured `cnnvis` records)."""
        return (PLUGIN_NAME,)

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        """Declares the dashboard as an ES module loaded in TensorBoard's plugin iframe."""
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="cnnvis")

    # Routes: each takes (ctx, experiment id, query parameters) and returns what to answer. -----

    def _runs(self, ctx, eid, args) -> dict[str, Any]:
        """`/runs` -> `{"runs": [{"run", "kinds": [..]}]}`."""
        return {"runs": self._reader.runs(ctx, eid)}

    def _tags(self, ctx, eid, args) -> dict[str, Any]:
        """`/tags?run=&kind=` -> `{"run", "kind", "names", "images", "json", "scalars"}`."""
        return self._reader.tags(ctx, eid, require(args, "run"), require(args, "kind"))

    def _steps(self, ctx, eid, args) -> dict[str, Any]:
        """`/steps?run=&tag=` -> `{"run", "tag", "plugin", "steps", "counts", "wall_times"}`."""
        return self._reader.steps(ctx, eid, require(args, "run"), require(args, "tag"))

    def _image(self, ctx, eid, args) -> tuple[bytes, str]:
        """`/image?run=&tag=&step=&index=` -> the encoded image and its type (`image/png`)."""
        run, tag = require(args, "run"), require(args, "tag")
        step, index = parse_uint(args, "step"), parse_uint(args, "index")
        return self._reader.image(ctx, eid, run, tag, step, index)

    def _data(self, ctx, eid, args) -> Any:
        """`/data?run=&tag=&step=` -> the record's JSON payload."""
        run, tag, step = require(args, "run"), require(args, "tag"), parse_uint(args, "step")
        return self._reader.json_record(ctx, eid, run, tag, step)

    def _scalars(self, ctx, eid, args) -> dict[str, Any]:
        """`/scalars?run=&tag=[&tag=..]` -> `{"run", "series": [{"tag", "steps", "values"}]}`."""
        run = require(args, "run")
        tags = [t for t in args.getlist("tag") if t]
        if not tags:
            raise RequestError(400, "Missing parameter 'tag'.")
        if len(tags) > MAX_SCALAR_TAGS:
            raise RequestError(400, f"At most {MAX_SCALAR_TAGS} tags per request.")
        return {"run": run, "series": self._reader.scalars(ctx, eid, run, tags)}


def _app(route: Callable[..., tuple[Any, str]]) -> Callable:
    """A WSGI app answering `route(ctx, eid, args)` -> (body, content type).

    Refused requests (`RequestError`, or a data provider's `PublicError` such as NotFoundError
    when data was reloaded away) are answered as `{"error": message}` with a 4xx status.
    """

    @wrappers.Request.application
    def app(request):
        try:
            ctx = plugin_util.context(request.environ)
            eid = plugin_util.experiment_id(request.environ)
            body, content_type = route(ctx, eid, request.args)
        except RequestError as e:
            return _error(request, e.code, e.message)
        except errors.PublicError as e:
            return _error(request, e.http_code if 400 <= e.http_code < 500 else 404, str(e))
        return http_util.Respond(request, body, content_type)

    return app


def _json_app(route: Callable[..., Any]) -> Callable:
    """A WSGI app answering `route(ctx, eid, args)` as JSON (see `_app`)."""
    return _app(lambda ctx, eid, args: (route(ctx, eid, args), "application/json"))


def _file_app(path: str, content_type: str) -> Callable:
    """A WSGI app serving one fixed file of `static/` (never a path from a request)."""

    @wrappers.Request.application
    def app(request):
        with open(path, "rb") as f:
            return http_util.Respond(request, f.read(), content_type)

    return app


def _error(request: wrappers.Request, code: int, message: str) -> wrappers.Response:
    return http_util.Respond(request, {"error": message}, "application/json", code=code)
