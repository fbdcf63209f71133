"""Direct drawing for charts without a matplotlib figure: a uint8 RGB canvas with rectangles,
lines, markers and anti-aliased DejaVu Sans text (glyphs rasterised once by FreeType, then
blitted), plus nice axis ticks. Used by the confusion, embedding and robustness pictures.
"""

from __future__ import annotations

import functools
import math
import os
import threading
from typing import Sequence

import cv2
import numpy as np

_FONT_LOCK = threading.Lock()  # an FT2Font is not safe to share between threads
_SHIFT = 4  # sub-pixel bits of the OpenCV drawing calls
_ELLIPSIS = "\u2026"


@functools.lru_cache(maxsize=None)
def _face(bold: bool):
    import matplotlib
    from matplotlib import ft2font

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ft2font.FT2Font(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name))


def _flags():
    from matplotlib import ft2font

    flags = getattr(ft2font, "LoadFlags", None)  # matplotlib >= 3.10
    return flags.FORCE_AUTOHINT if flags is not None else ft2font.LOAD_FORCE_AUTOHINT


def _unfitted_kerning():
    from matplotlib import ft2font

    kerning = getattr(ft2font, "Kerning", None)  # matplotlib >= 3.10
    return kerning.UNFITTED if kerning is not None else ft2font.KERNING_UNFITTED


@functools.lru_cache(maxsize=4096)
def _glyph(char: str, px: int, bold: bool) -> tuple[np.ndarray, int, int, float, int]:
    """`(coverage, left, top, advance, index)` of one character at `px` pixels per em: the
    uint8 ink box (coverage 0..255), its offset from the pen (right, up) and the hinted
    advance."""
    face = _face(bold)
    with _FONT_LOCK:
        face.set_size(px, 72)
        face.set_text(char, 0.0, flags=_flags())
        face.draw_glyphs_to_bitmap(antialiased=True)
        bitmap = np.asarray(face.get_image())
        glyph = face.load_char(ord(char), flags=_flags())
        index = face.get_char_index(ord(char))
    rows, cols = np.nonzero(bitmap)
    if not len(rows):
        return np.zeros((0, 0), np.uint8), 0, 0, glyph.horiAdvance / 64, index
    ink = bitmap[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    left, top = round(glyph.horiBearingX / 64), round(glyph.horiBearingY / 64)
    return ink.astype(np.uint8), left, top, glyph.horiAdvance / 64, index


@functools.lru_cache(maxsize=65536)
def _kerning(left: int, right: int, px: int, bold: bool) -> float:
    """The kerning in pixels between two glyph indices."""
    face = _face(bold)
    with _FONT_LOCK:
        face.set_size(px, 72)
        return face.get_kerning(left, right, _unfitted_kerning()) / 64


@functools.lru_cache(maxsize=None)
def _line_metrics(px: int, bold: bool) -> tuple[int, int]:
    """`(ascent, descent)` in pixels of a text line: the tops of "l" and bottoms of "p"."""
    return _glyph("l", px, bold)[2], _glyph("p", px, bold)[0].shape[0] - _glyph("p", px, bold)[2]


@functools.lru_cache(maxsize=2048)
def text_bitmap(text: str, px: int, bold: bool = False) -> tuple[np.ndarray, int, int]:
    """The coverage of a one-line string: `(alpha, x0, baseline)`.

    `alpha` is the uint8 coverage (0..255); the pen starts at column `-x0` of it and the baseline is
    the top edge of row `baseline` (so rows `< baseline` are above it). The bitmap spans
    the line's ascent and descent, whatever the letters, so strings align on their baseline.
    """
    placed = []
    pen, previous = 0.0, None
    for char in text:
        ink, left, top, advance, index = _glyph(char, px, bold)
        if previous is not None:
            pen += _kerning(previous, index, px, bold)
        placed.append((ink, int(round(pen)) + left, top))
        pen, previous = pen + advance, index
    ascent, descent = _line_metrics(px, bold)
    x_lo = min([0] + [x for _, x, _ in placed])
    x_hi = max([int(math.ceil(pen))] + [x + ink.shape[1] for ink, x, _ in placed])
    y_hi = max([ascent] + [top for _, _, top in placed])
    y_lo = max([descent] + [ink.shape[0] - top for ink, _, top in placed])
    alpha = np.zeros((y_hi + y_lo, x_hi - x_lo), np.uint8)
    for ink, x, top in placed:
        h, w = ink.shape
        region = alpha[y_hi - top : y_hi - top + h, x - x_lo : x - x_lo + w]
        np.maximum(region, ink, out=region)
    return alpha, -x_lo, y_hi


@functools.lru_cache(maxsize=1024)
def _rotated_bitmap(text: str, px: int, bold: bool, angle: float) -> np.ndarray:
    """The coverage of `text` turned `angle` degrees counter-clockwise, cropped to its ink.

    Quarter turns rotate the upright bitmap; other angles let FreeType lay the glyphs out
    along the slanted baseline (sharper than resampling an upright bitmap)."""
    if angle % 90 == 0:
        return np.ascontiguousarray(np.rot90(text_bitmap(text, px, bold)[0], int(angle // 90)))
    face = _face(bold)
    with _FONT_LOCK:
        face.set_size(px, 72)
        face.set_text(text, float(angle), flags=_flags())
        face.draw_glyphs_to_bitmap(antialiased=True)
        bitmap = np.asarray(face.get_image())
    rows, cols = np.nonzero(bitmap)
    if not len(rows):
        return np.zeros((0, 0), np.uint8)
    ink = bitmap[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    return ink.astype(np.uint8)


def rotated_size(text: str, px: int, angle: float, bold: bool = False) -> tuple[int, int]:
    """`(width, height)` in pixels of the box of `text` turned `angle` degrees."""
    h, w = _rotated_bitmap(text, max(1, int(round(px))), bold, float(angle)).shape
    return w, h


def text_width(text: str, px: int, bold: bool = False) -> int:
    """The width in pixels of `text` at `px` pixels per em."""
    alpha, x0, _ = text_bitmap(text, px, bold)
    return alpha.shape[1] - x0


def line_height(px: int, bold: bool = False) -> int:
    """Ascent plus descent of a line of text at `px` pixels per em."""
    return sum(_line_metrics(px, bold))


def fit_text(text: str, px: int, max_width: int, bold: bool = False) -> str:
    """`text`, cut short with an ellipsis if it is wider than `max_width` pixels."""
    if text_width(text, px, bold) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if text_width(text[:mid].rstrip() + _ELLIPSIS, px, bold) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + _ELLIPSIS


def to_rgb8(color) -> tuple[int, int, int]:
    """An RGB colour in [0, 1] (or a `#rrggbb` string) as three ints in 0..255."""
    if isinstance(color, str):
        color = tuple(int(color.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4))
    return tuple(int(round(255 * float(c))) for c in color[:3])


class Canvas:
    """A white (or `background`) uint8 RGB image to draw on, in pixel coordinates (x right,
    y down); `image()` gives the float32 RGB picture in [0, 1].

    Example:

    ```python
    canvas = Canvas(200, 100)
    canvas.fill_rect(10, 10, 60, 40, (0.2, 0.4, 0.8))
    canvas.text("hello", 100, 50, 14, ha="center", va="center")
    picture = canvas.image()
    ```

    Args:
        width: pixels across.
        height: pixels down.
        background: RGB in [0, 1]. Defaults to white.
    """

    def __init__(self, width: int, height: int, background=(1.0, 1.0, 1.0)):
        self.pixels = np.empty((int(height), int(width), 3), np.uint8)
        self.fill_rect(0, 0, self.width, self.height, background)

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    def image(self) -> np.ndarray:
        """The picture as a float32 `(height, width, 3)` array in [0, 1]."""
        return np.multiply(self.pixels, np.float32(1.0 / 255.0), dtype=np.float32)

    def fill_rect(self, x0: int, y0: int, x1: int, y1: int, color) -> None:
        """Fills pixels `[x0, x1) x [y0, y1)` (clipped to the canvas)."""
        x0, y0 = max(0, int(x0)), max(0, int(y0))
        x1, y1 = min(self.width, int(x1)), min(self.height, int(y1))
        if x1 > x0 and y1 > y0:  # one pixel row, then broadcast down: contiguous copies
            row = np.tile(np.asarray(to_rgb8(color), np.uint8), (x1 - x0, 1))
            self.pixels[y0:y1, x0:x1] = row

    def fill_cells(self, x0: int, y0: int, edges_x, edges_y, colors: np.ndarray) -> None:
        """Paints a table of cells: cell `(r, c)` covers columns `x0 + edges_x[c]` up to
        `x0 + edges_x[c + 1]` and the same for rows; `colors` is `(rows, cols, 3)` in [0, 1]."""
        rgb = np.clip(np.rint(np.asarray(colors, np.float64) * 255), 0, 255).astype(np.uint8)
        block = rgb.repeat(np.diff(edges_x), axis=1).repeat(np.diff(edges_y), axis=0)
        x0, y0 = int(x0 + edges_x[0]), int(y0 + edges_y[0])
        self.pixels[y0 : y0 + block.shape[0], x0 : x0 + block.shape[1]] = block

    def outline(self, x: int, y: int, w: int, h: int, color=(0.0, 0.0, 0.0)) -> None:
        """A one-pixel frame just outside the box `[x, x + w) x [y, y + h)`."""
        self.fill_rect(x - 1, y - 1, x + w + 1, y, color)
        self.fill_rect(x - 1, y + h, x + w + 1, y + h + 1, color)
        self.fill_rect(x - 1, y, x, y + h, color)
        self.fill_rect(x + w, y, x + w + 1, y + h, color)

    def line(self, p0, p1, color, width: float = 1.0) -> None:
        """An anti-aliased line from `p0 = (x, y)` to `p1` (float pixel coordinates)."""
        scale = 1 << _SHIFT
        a = tuple(int(round(v * scale)) for v in p0)
        b = tuple(int(round(v * scale)) for v in p1)
        thickness = max(1, int(round(width)))
        cv2.line(self.pixels, a, b, to_rgb8(color), thickness, cv2.LINE_AA, _SHIFT)

    def polygon(self, points, color) -> None:
        """A filled, anti-aliased convex polygon through `points` (`(k, 2)` x, y)."""
        pts = np.rint(np.asarray(points, np.float64) * (1 << _SHIFT)).astype(np.int32)
        cv2.fillConvexPoly(self.pixels, pts, to_rgb8(color), cv2.LINE_AA, _SHIFT)

    def circles(self, xy: np.ndarray, radius: float, color, thickness: int = -1) -> None:
        """Anti-aliased discs (`thickness=-1`) or rings at each `(x, y)` of `xy`."""
        scale = 1 << _SHIFT
        rgb, r = to_rgb8(color), int(round(radius * scale))
        for x, y in np.rint(np.asarray(xy, np.float64) * scale).astype(np.int64).tolist():
            cv2.circle(self.pixels, (x, y), r, rgb, thickness, cv2.LINE_AA, _SHIFT)

    def text(
        self,
        text: str,
        x: float,
        y: float,
        px: int = 11,
        color=(0.0, 0.0, 0.0),
        ha: str = "left",
        va: str = "baseline",
        rotation: float = 0.0,
        bold: bool = False,
        halo: bool = False,
    ) -> tuple[int, int, int, int]:
        """Writes one line of text and returns the box it took, `(x0, y0, x1, y1)`.

        Args:
            text: the string.
            x: where the text is anchored across.
            y: where the text is anchored down.
            px: font size in pixels per em. Defaults to 11.
            color: RGB in [0, 1] or `#rrggbb`. Defaults to black.
            ha: `"left"`, `"center"` or `"right"` of the text at `x`. Defaults to `"left"`.
            va: `"baseline"`, `"top"`, `"center"` or `"bottom"` of the line at `y` (of the
                box for rotated text). Defaults to `"baseline"`.
            rotation: degrees counter-clockwise. Defaults to 0.
            bold: DejaVu Sans Bold. Defaults to False.
            halo: a white rim around the letters, to read over points. Defaults to False.

        Returns:
            The drawn box in pixels (it may reach outside the canvas; drawing is clipped).
        """
        px = max(1, int(round(px)))
        if not text:
            return int(x), int(y), int(x), int(y)
        if rotation % 360:
            alpha = _rotated_bitmap(text, px, bold, float(rotation))
            h, w = alpha.shape
            left = x - {"left": 0.0, "center": w / 2, "right": w}[ha]
            top = y - {"top": 0.0, "center": h / 2, "bottom": h, "baseline": h}[va]
        else:
            alpha, pen, baseline = text_bitmap(text, px, bold)
            h, w = alpha.shape
            inked = w - pen
            left = x - pen - {"left": 0.0, "center": inked / 2, "right": inked}[ha]
            ascent, descent = _line_metrics(px, bold)
            top = (
                y
                - baseline
                + {
                    "baseline": 0.0,
                    "top": ascent,
                    "center": (ascent - descent) / 2,
                    "bottom": -descent,
                }[va]
            )
        x0, y0 = int(round(left)), int(round(top))
        if halo:
            rim = cv2.dilate(np.pad(alpha, 1), np.ones((3, 3), np.uint8))
            self.blend(rim, x0 - 1, y0 - 1, (1.0, 1.0, 1.0))
        self.blend(alpha, x0, y0, color)
        return x0, y0, x0 + w, y0 + h

    def blend(self, alpha: np.ndarray, x0: int, y0: int, color) -> None:
        """Paints `color` with coverage `alpha` (`(h, w)` float in [0, 1], or uint8 0..255)
        with its top-left corner at `(x0, y0)`."""
        h, w = alpha.shape
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(self.width, x0 + w), min(self.height, y0 + h)
        if cx1 <= cx0 or cy1 <= cy0:
            return
        a = alpha[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0, None]
        region = self.pixels[cy0:cy1, cx0:cx1]
        mixed = region.astype(np.float32)
        step = (np.asarray(to_rgb8(color), np.float32) - mixed) * a
        if alpha.dtype == np.uint8:
            step *= np.float32(1.0 / 255.0)
        mixed += step
        np.add(mixed, 0.5, out=region, casting="unsafe")  # rounds to the nearest level


def nice_ticks(lo: float, hi: float, max_ticks: int = 7) -> np.ndarray:
    """Round tick values within `[lo, hi]`: the smallest step of 1, 2, 2.5 or 5 times a power
    of ten that gives at most `max_ticks` of them."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return np.array([lo], np.float64) if np.isfinite(lo) else np.zeros(0)
    power = 10.0 ** math.floor(math.log10((hi - lo) / max(1, max_ticks)))
    for step in (m * power * 10**e for e in (0, 1, 2) for m in (1, 2, 2.5, 5)):
        first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
        if last - first + 1 <= max_ticks:
            break
    return np.arange(first, last + 1) * step


def tick_labels(ticks: Sequence[float]) -> list[str]:
    """Tick values as short strings with the decimals they need ("−" as the minus sign)."""
    ticks = np.asarray(ticks, np.float64)
    decimals = next(
        (d for d in range(7) if np.allclose(ticks * 10**d, np.round(ticks * 10**d), atol=1e-6)),
        6,
    )
    labels = [f"{0.0 if abs(t) < 0.5 * 10**-decimals else t:.{decimals}f}" for t in ticks]
    return [s.replace("-", "\u2212") for s in labels]


@functools.lru_cache(maxsize=None)
def _lookup_table(name: str) -> np.ndarray:
    """The `(N, 3)` colours of a matplotlib colormap (fetched once: the registry copies)."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap(np.arange(cmap.N))[:, :3].astype(np.float64)


def colormap_colors(values: np.ndarray, name: str) -> np.ndarray:
    """Values in [0, 1] through a matplotlib colormap (the same bins as calling it): float
    `(..., 3)`, NaN as white."""
    table = _lookup_table(name)
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    index = np.clip(np.where(finite, values, 0.0) * len(table), 0, len(table) - 1)
    out = table[index.astype(np.int64)]
    out[~finite] = 1.0
    return out
