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
from tensorboard_plugin_cnnvis.reader import RequestError

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
        self._data_provider = context.data_provider
        self._reader = reader_lib.LogReader(context.data_provider, context.sampling_hints)
        self._assets = _static_assets()

    def get_plugin_apps(self) -> dict[str, Callable]:
        """Returns the plugin's routes (served under `/data/plugin/cnnvis`)."""
        apps = {
            "/runs": self._serve_runs,
            "/tags": self._serve_tags,
            "/steps": self._serve_steps,
            "/image": self._serve_image,
            "/data": self._serve_data,
            "/scalars": self._serve_scalars,
        }
        for route, (path, content_type) in self._assets.items():
            apps[route] = self._asset_app(path, content_type)
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

    # Helpers -------------------------------------------------------------------------

    def _call(self, request: wrappers.Request, fn: Callable[..., Any]) -> wrappers.Response:
        """Runs `fn(ctx, eid, args)` and answers JSON, or a JSON error for refused requests."""
        try:
            ctx = plugin_util.context(request.environ)
            eid = plugin_util.experiment_id(request.environ)
            return fn(ctx, eid, request.args)
        except RequestError as e:
            return _error(request, e.code, e.message)
        except errors.PublicError as e:
            # Raised by the data provider (e.g. NotFoundError when data was reloaded away).
            code = e.http_code if 400 <= e.http_code < 500 else 404
            return _error(request, code, str(e))

    def _json(self, request, fn):
        return self._call(
            request,
            lambda ctx, eid, args: http_util.Respond(
                request, fn(ctx, eid, args), "application/json"
            ),
        )

    # Routes --------------------------------------------------------------------------

    @wrappers.Request.application
    def _serve_runs(self, request):
        """`/runs` -> `{"runs": [{"run", "kinds": [..]}]}`."""
        return self._json(request, lambda ctx, eid, args: {"runs": self._reader.runs(ctx, eid)})

    @wrappers.Request.application
    def _serve_tags(self, request):
        """`/tags?run=&kind=` -> `{"run", "kind", "names", "images", "json", "scalars"}`."""

        def tags(ctx, eid, args):
            run = reader_lib.require("run", args.get("run"))
            kind = reader_lib.require("kind", args.get("kind"))
            return self._reader.tags(ctx, eid, run, kind)

        return self._json(request, tags)

    @wrappers.Request.application
    def _serve_steps(self, request):
        """`/steps?run=&tag=` -> `{"run", "tag", "plugin", "steps", "counts", "wall_times"}`."""

        def steps(ctx, eid, args):
            run = reader_lib.require("run", args.get("run"))
            tag = reader_lib.require("tag", args.get("tag"))
            return self._reader.steps(ctx, eid, run, tag)

        return self._json(request, steps)

    @wrappers.Request.application
    def _serve_image(self, request):
        """`/image?run=&tag=&step=&index=` -> the encoded image (`image/png`)."""

        def image(ctx, eid, args):
            run = reader_lib.require("run", args.get("run"))
            tag = reader_lib.require("tag", args.get("tag"))
            step = reader_lib.parse_uint("step", args.get("step"))
            index = reader_lib.parse_uint("index", args.get("index"))
            data, mime = self._reader.image(ctx, eid, run, tag, step, index)
            return http_util.Respond(request, data, mime)

        return self._call(request, image)

    @wrappers.Request.application
    def _serve_data(self, request):
        """`/data?run=&tag=&step=` -> the record's JSON payload."""

        def data(ctx, eid, args):
            run = reader_lib.require("run", args.get("run"))
            tag = reader_lib.require("tag", args.get("tag"))
            step = reader_lib.parse_uint("step", args.get("step"))
            return self._reader.json_record(ctx, eid, run, tag, step)

        return self._json(request, data)

    @wrappers.Request.application
    def _serve_scalars(self, request):
        """`/scalars?run=&tag=[&tag=..]` -> `{"run", "series": [{"tag", "steps", "values"}]}`."""

        def scalars(ctx, eid, args):
            run = reader_lib.require("run", args.get("run"))
            tags = [t for t in args.getlist("tag") if t]
            if not tags:
                raise RequestError(400, "Missing parameter 'tag'.")
            if len(tags) > MAX_SCALAR_TAGS:
                raise RequestError(400, f"At most {MAX_SCALAR_TAGS} tags per request.")
            return {"run": run, "series": self._reader.scalars(ctx, eid, run, tags)}

        return self._json(request, scalars)

    def _asset_app(self, path: str, content_type: str) -> Callable:
        """Returns a WSGI app serving one fixed file of `static/` (never a path from a request)."""

        @wrappers.Request.application
        def serve(request):
            with open(path, "rb") as f:
                content = f.read()
            return http_util.Respond(request, content, content_type)

        return serve


def _error(request: wrappers.Request, code: int, message: str) -> wrappers.Response:
    return http_util.Respond(request, {"error": message}, "application/json", code=code)
