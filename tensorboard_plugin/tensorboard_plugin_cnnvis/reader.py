"""Reads keras-cnnvis records through TensorBoard's data provider, validating every request.

No file is ever opened here: runs, tags, steps, images and JSON all come from the data provider.
"""

from __future__ import annotations

import json
import re
from typing import Any, Mapping, Sequence

from tensorboard import errors
from tensorboard.data import provider

IMAGES_PLUGIN = "images"
JSON_PLUGIN = "cnnvis"
SCALARS_PLUGIN = "scalars"

# The data provider's (list, read) methods for each data plugin's records.
_PROVIDER_METHODS = {
    IMAGES_PLUGIN: ("list_blob_sequences", "read_blob_sequences"),
    JSON_PLUGIN: ("list_tensors", "read_tensors"),
    SCALARS_PLUGIN: ("list_scalars", "read_scalars"),
}

# `downsample` sent to the data provider when every stored sample is wanted. The provider
# returns min(downsample, stored); 0 would mean "none", so "all" is a large number instead.
ALL_SAMPLES = 1_000_000

# Kinds of records, i.e. the first segment of an image tag / second segment of a JSON tag
# (see docs/log-format.md).
KINDS = (
    "filters",
    "activations",
    "health",
    "probes",
    "attribution",
    "patches",
    "neighbors",
    "confusion",
    "embedding",
    "synthesis",
    "localization",
    "network",
    "robustness",
)

_UINT_RE = re.compile(r"^[0-9]{1,18}$")
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


class RequestError(Exception):
    """A request the plugin refuses, answered as `{"error": message}` with `code`.

    Args:
        code: the HTTP status (400 for malformed values, 404 for unknown data).
        message: a human-readable reason.
    """

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def downsample_for(sampling_hints: Mapping[str, int] | None, plugin_name: str) -> int:
    """Returns the `downsample` to request for `plugin_name` given `--samples_per_plugin`.

    A missing hint or a hint of 0 ("all", as TensorBoard's data server reads it) requests every
    sample the provider kept; a positive hint is forwarded as is.

    Args:
        sampling_hints: `TBContext.sampling_hints`, plugin name to count, or `None`.
        plugin_name: the data plugin being read (`"cnnvis"`, `"images"`, `"scalars"`).

    Returns:
        A positive sample count.
    """
    hint = (sampling_hints or {}).get(plugin_name)
    if hint is None or hint <= 0:
        return ALL_SAMPLES
    return int(hint)


def require(args: Mapping[str, str], name: str) -> str:
    """Returns the required query parameter `name` of `args`.

    Args:
        args: the request's query parameters.
        name: the parameter's name.

    Returns:
        Its value, a non-empty string.

    Raises:
        RequestError: 400 if the parameter is missing or empty.
    """
    raw = args.get(name)
    if raw is None or raw == "":
        raise RequestError(400, f"Missing parameter '{name}'.")
    return raw


def parse_uint(args: Mapping[str, str], name: str) -> int:
    """Returns the required non-negative integer query parameter `name` of `args`.

    Raises:
        RequestError: 400 if the parameter is missing or not a plain non-negative integer.
    """
    raw = require(args, name)
    if not _UINT_RE.match(raw):
        raise RequestError(400, f"Parameter '{name}' must be a non-negative integer.")
    return int(raw)


def tag_kind(tag: str, plugin_name: str) -> str | None:
    """Returns the record kind of `tag` (e.g. `"health"`), or `None` if it is not ours.

    Image tags are `<kind>/<name>`; JSON tags `json/<kind>/<name>`; scalar tags
    `<kind>/<name>/...`.
    """
    parts = tag.split("/")
    if plugin_name == JSON_PLUGIN:
        if len(parts) >= 3 and parts[0] == "json" and parts[1] in KINDS:
            return parts[1]
        return None
    if len(parts) >= 2 and parts[0] in KINDS:
        return parts[0]
    return None


def _tag_name(tag: str, plugin_name: str) -> str:
    """The `<name>` part of an image tag `<kind>/<name>` or JSON tag `json/<kind>/<name>`."""
    skip = 2 if plugin_name == JSON_PLUGIN else 1
    return tag.split("/", skip)[skip]


def _named_tags(tags, plugin_name: str, kind: str) -> dict[str, str]:
    """`{name: tag}` for the tags of `kind` among `tags`, listed for `plugin_name`."""
    return {_tag_name(t, plugin_name): t for t in tags if tag_kind(t, plugin_name) == kind}


def _decode_json(datum: provider.TensorDatum) -> Any:
    value = datum.numpy
    if getattr(value, "shape", None) not in ((), None):
        if value.size != 1:
            raise RequestError(404, "The record is not a JSON string.")
        value = value.reshape(())
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RequestError(404, "The record is not UTF-8 text.") from e
    if not isinstance(value, str):
        raise RequestError(404, "The record is not a JSON string.")
    try:
        # NaN/Infinity would not parse in a browser: they become null.
        return json.loads(value, parse_constant=lambda _: None)
    except ValueError as e:
        raise RequestError(404, "The record does not hold valid JSON.") from e


def _blobs(datum: provider.BlobSequenceDatum) -> tuple:
    """The image blobs of an image record (its first two values are the width and height)."""
    return datum.values[2:]


def image_mime_type(data: bytes) -> str | None:
    """Returns the MIME type of encoded image bytes from their signature, or `None`."""
    for signature, mime in _IMAGE_SIGNATURES:
        if data.startswith(signature):
            return mime
    return None


class LogReader:
    """Validated access to one experiment's cnnvis records through a data provider.

    Every method checks that the run, tag, step and index it is given exist and raises
    `RequestError` (404) otherwise, so a request value is only ever compared with names the
    data provider listed.

    Args:
        data_provider: TensorBoard's `DataProvider` (`TBContext.data_provider`).
        sampling_hints: `TBContext.sampling_hints` (`--samples_per_plugin`), or `None`.
    """

    def __init__(self, data_provider: provider.DataProvider, sampling_hints=None):
        self._provider = data_provider
        self._downsample = {
            name: downsample_for(sampling_hints, name)
            for name in (IMAGES_PLUGIN, JSON_PLUGIN, SCALARS_PLUGIN)
        }

    def downsample(self, plugin_name: str) -> int:
        """The `downsample` this reader requests for `plugin_name`."""
        return self._downsample[plugin_name]

    # Listing -------------------------------------------------------------------------

    def _list(self, ctx, eid, plugin_name, runs=None):
        filt = provider.RunTagFilter(runs=runs) if runs is not None else None
        fn = getattr(self._provider, _PROVIDER_METHODS[plugin_name][0])
        return fn(ctx, experiment_id=eid, plugin_name=plugin_name, run_tag_filter=filt)

    def runs(self, ctx, eid: str) -> list[dict[str, Any]]:
        """Lists runs holding cnnvis records.

        Returns:
            `[{"run": name, "kinds": [kind, ...]}, ...]` sorted by run name; a run counts when
            it has a `cnnvis` JSON record or an image tag of a known kind.
        """
        kinds: dict[str, set[str]] = {}
        for plugin_name in (JSON_PLUGIN, IMAGES_PLUGIN):
            for run, tags in self._list(ctx, eid, plugin_name).items():
                for tag in tags:
                    kind = tag_kind(tag, plugin_name)
                    if kind is not None:
                        kinds.setdefault(run, set()).add(kind)
        return [{"run": run, "kinds": sorted(kinds[run])} for run in sorted(kinds)]

    def _run_tags(self, ctx, eid, run: str, plugin_name: str) -> Mapping[str, Any]:
        return self._list(ctx, eid, plugin_name, runs=[run]).get(run, {})

    def check_run(self, ctx, eid, run: str) -> None:
        """Raises a 404 `RequestError` unless `run` holds cnnvis JSON or images."""
        for plugin_name in (JSON_PLUGIN, IMAGES_PLUGIN, SCALARS_PLUGIN):
            if self._run_tags(ctx, eid, run, plugin_name):
                return
        raise RequestError(404, "Unknown run.")

    def tags(self, ctx, eid, run: str, kind: str) -> dict[str, Any]:
        """Lists the records of one kind in one run.

        Args:
            run: the run name.
            kind: one of `KINDS`.

        Returns:
            `{"run", "kind", "names": [..], "images": {name: tag}, "json": {name: tag},
            "scalars": {name: [tag, ...]}}` where `name` is the `<layer>` / `<method>` part.
            Scalar tags `<kind>/<name>/<score>` are grouped under the longest known name they
            extend (names come from image and JSON tags), else under their parent path.
        """
        if kind not in KINDS:
            raise RequestError(400, "Unknown kind; expected one of " + ", ".join(KINDS) + ".")
        listed = {name: self._run_tags(ctx, eid, run, name) for name in _PROVIDER_METHODS}
        if not any(listed.values()):
            raise RequestError(404, "Unknown run.")
        images = _named_tags(listed[IMAGES_PLUGIN], IMAGES_PLUGIN, kind)
        records = _named_tags(listed[JSON_PLUGIN], JSON_PLUGIN, kind)
        known = set(images) | set(records)
        scalars: dict[str, list[str]] = {}
        for tag in listed[SCALARS_PLUGIN]:
            if tag_kind(tag, SCALARS_PLUGIN) != kind:
                continue
            rest = tag.split("/", 1)[1]
            owners = [n for n in known if rest.startswith(n + "/")]
            name = max(owners, key=len) if owners else rest.rpartition("/")[0] or rest
            scalars.setdefault(name, []).append(tag)
        return {
            "run": run,
            "kind": kind,
            "names": sorted(known | set(scalars)),
            "images": dict(sorted(images.items())),
            "json": dict(sorted(records.items())),
            "scalars": {name: sorted(tags) for name, tags in sorted(scalars.items())},
        }

    def _check_tag(self, ctx, eid, run: str, tag: str) -> str:
        """Returns the data plugin holding `run`/`tag` (JSON first), or raises 404."""
        found_run = False
        for plugin_name in (JSON_PLUGIN, IMAGES_PLUGIN):
            tags = self._run_tags(ctx, eid, run, plugin_name)
            found_run = found_run or bool(tags)
            if tag in tags and tag_kind(tag, plugin_name) is not None:
                return plugin_name
        if not found_run:
            raise RequestError(404, "Unknown run.")
        raise RequestError(404, "Unknown tag for this run.")

    # Reading -------------------------------------------------------------------------

    def _read(self, ctx, eid, plugin_name: str, run: str, tags: Sequence[str]):
        """Reads `tags` of `run` from `plugin_name`: `{tag: [datum, ...]}`."""
        fn = getattr(self._provider, _PROVIDER_METHODS[plugin_name][1])
        result = fn(
            ctx,
            experiment_id=eid,
            plugin_name=plugin_name,
            downsample=self._downsample[plugin_name],
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=list(tags)),
        )
        return result.get(run, {})

    def _record(self, ctx, eid, run: str, tag: str, step: int, plugin_name: str, what: str):
        """The datum of `run`/`tag` at `step`, which must be a record of `plugin_name`."""
        if self._check_tag(ctx, eid, run, tag) != plugin_name:
            raise RequestError(404, f"This tag holds no {what}.")
        for datum in self._read(ctx, eid, plugin_name, run, [tag]).get(tag, []):
            if datum.step == step:
                return datum
        raise RequestError(404, "No record at this step.")

    def steps(self, ctx, eid, run: str, tag: str) -> dict[str, Any]:
        """Lists the steps of one image or JSON tag.

        Returns:
            `{"run", "tag", "plugin": "images" or "cnnvis", "steps": [int], "counts": [int],
            "wall_times": [float]}`; `counts[i]` is the number of images at `steps[i]` (1 for
            JSON records).
        """
        plugin_name = self._check_tag(ctx, eid, run, tag)
        data = self._read(ctx, eid, plugin_name, run, [tag]).get(tag, [])
        if plugin_name == IMAGES_PLUGIN:
            counts = [len(_blobs(d)) for d in data]
        else:
            counts = [1 for _ in data]
        return {
            "run": run,
            "tag": tag,
            "plugin": plugin_name,
            "steps": [int(d.step) for d in data],
            "counts": counts,
            "wall_times": [float(d.wall_time) for d in data],
        }

    def image(self, ctx, eid, run: str, tag: str, step: int, index: int) -> tuple[bytes, str]:
        """Reads image `index` of an image record.

        Returns:
            `(encoded bytes, mime type)`.

        Raises:
            RequestError: 404 for an unknown run/tag/step, an index out of range, or a blob
                that is not an encoded image.
        """
        blobs = _blobs(self._record(ctx, eid, run, tag, step, IMAGES_PLUGIN, "images"))
        if index >= len(blobs):
            raise RequestError(404, f"Index out of range: this step has {len(blobs)} images.")
        try:
            data = self._provider.read_blob(ctx, blob_key=blobs[index].blob_key)
        except errors.NotFoundError as e:
            raise RequestError(404, "The image is no longer available.") from e
        mime = image_mime_type(data)
        if mime is None:
            raise RequestError(404, "The record is not an encoded image.")
        return data, mime

    def json_record(self, ctx, eid, run: str, tag: str, step: int) -> Any:
        """Reads and parses the JSON payload of a `cnnvis` record at `step`."""
        return _decode_json(self._record(ctx, eid, run, tag, step, JSON_PLUGIN, "JSON records"))

    def scalars(self, ctx, eid, run: str, tags: list[str]) -> list[dict[str, Any]]:
        """Reads scalar series.

        Args:
            run: the run name.
            tags: scalar tags of that run (each must exist).

        Returns:
            `[{"tag", "steps": [int], "values": [float or None]}, ...]` in the order of `tags`;
            NaN and infinities are `None`.
        """
        known = self._run_tags(ctx, eid, run, SCALARS_PLUGIN)
        if not known:
            self.check_run(ctx, eid, run)
            raise RequestError(404, "This run has no scalars.")
        missing = [t for t in tags if t not in known]
        if missing:
            raise RequestError(404, "Unknown scalar tag for this run.")
        result = self._read(ctx, eid, SCALARS_PLUGIN, run, tags)
        series = []
        for tag in tags:
            points = result.get(tag, [])
            series.append(
                {
                    "tag": tag,
                    "steps": [int(p.step) for p in points],
                    "values": [_finite(p.value) for p in points],
                }
            )
        return series


def _finite(value: float) -> float | None:
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None
