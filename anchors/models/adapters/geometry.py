"""Where each visual token sits in the original image: views, grid cells and pixel rectangles.

A processor turns an image into one or more *views* (the whole image, a tile, a global thumbnail)
by resizing, padding and cropping; the vision tower cuts each view into patches, merges or pools
them into a grid of features, and the family's code may crop or interpolate that grid before the
features replace the image tokens. A :class:`View` records those steps as data (pixel steps from
the original image to the view, grid steps from the view's cells to the token grid), so a token's
rectangle is found by walking back through them: the rectangle is every original pixel whose
value reaches the token with a nonzero resampling weight (a resize's kernel spreads a pixel over
neighbouring outputs, so neighbouring rectangles overlap; a crop leaves pixels that reach no
token). Rectangles are integer pixel boxes ``[x0, y0, x1, y1)`` of the original image; a token
that stands for no patch (an image-newline feature) has none.

>>> view = View("image", (Resize((40, 60), (28, 42)),), cell=(14, 14), grid=(2, 3))
>>> geometry = image_geometry((40, 60), (view,), [(0, 0, 0), (0, 1, 2)])
>>> geometry.rects.tolist()
[[0.0, 0.0, 22.0, 22.0], [38.0, 18.0, 60.0, 40.0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Sequence, Union

import numpy as np

#: Half-width of each resampling kernel at scale 1, in source pixels (PIL's and torchvision's).
KERNEL_SUPPORT: dict[str, float] = {"nearest": 0.5, "box": 0.5, "bilinear": 1.0, "hamming": 1.0, "bicubic": 2.0,
                                    "lanczos": 3.0}
#: PIL's resampling codes (``PILImageResampling``), as processors store them.
PIL_KERNELS: dict[int, str] = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}

Interval = tuple[int, int]


@dataclass(frozen=True)
class Resize:
    """Resampling from ``before`` to ``after`` (height, width). With ``antialias`` (how processors
    resize) the kernel widens by the downscale factor, as PIL and torchvision do; without it (a
    feature grid interpolated by ``torch.nn.functional.interpolate``) bilinear reads two taps."""

    before: tuple[int, int]
    after: tuple[int, int]
    kernel: str = "bicubic"
    antialias: bool = True

    def back(self, axis: int, span: Interval) -> Interval | None:
        """The source pixels (first, end) whose weight on outputs ``span`` along ``axis`` is nonzero."""
        n_in, n_out = self.before[axis], self.after[axis]
        if n_in == n_out:
            return span
        scale = n_in / n_out
        lo, hi = span
        if not self.antialias:
            if self.kernel != "bilinear":
                raise ValueError(f"interpolation without antialias is described for bilinear only, not {self.kernel}")
            first = max(0.0, (lo + 0.5) * scale - 0.5)
            last = max(0.0, (hi - 0.5) * scale - 0.5)
            end = math.floor(last) + (2 if last > math.floor(last) else 1)
            return _clip(math.floor(first), end, n_in)
        support = KERNEL_SUPPORT[self.kernel] * max(scale, 1.0)
        first_centre, last_centre = (lo + 0.5) * scale, (hi - 0.5) * scale
        first = math.floor(first_centre - support - 0.5) + 1  # the first pixel centre strictly inside the support
        end = math.ceil(last_centre + support - 0.5)  # one past the last such centre
        return _clip(first, end, n_in)


@dataclass(frozen=True)
class Place:
    """A ``before``-sized picture placed at (``top``, ``left``) of an ``after``-sized canvas: padding
    when the canvas is larger, cropping when the offsets are negative or the canvas smaller."""

    before: tuple[int, int]
    after: tuple[int, int]
    top: int = 0
    left: int = 0

    def back(self, axis: int, span: Interval) -> Interval | None:
        offset = (self.top, self.left)[axis]
        return _clip(span[0] - offset, span[1] - offset, self.before[axis])


Step = Union[Resize, Place]


def _clip(first: int, end: int, size: int) -> Interval | None:
    first, end = max(first, 0), min(end, size)
    return (first, end) if end > first else None


@dataclass(frozen=True)
class View:
    """One picture the vision tower sees, and how its features become tokens.

    ``steps`` lead from the original image to the view's pixels; ``cell`` is the (height, width)
    of view pixels behind one feature of the tower's grid (patch × merge or pool); ``grid_steps``
    lead from that feature grid to the ``grid`` of tokens (unpadding crops, feature interpolation).

    >>> View("tile 1,2", (Resize((100, 200), (56, 112)), Place((56, 112), (56, 56), 0, -56)), (28, 28), (2, 2)).name
    'tile 1,2'"""

    name: str
    steps: tuple[Step, ...]
    cell: tuple[int, int]
    grid: tuple[int, int]
    grid_steps: tuple[Step, ...] = ()

    def rect(self, row: int, col: int) -> tuple[int, int, int, int] | None:
        """The original pixels ``(x0, y0, x1, y1)`` that reach token (``row``, ``col``), or None."""
        rows, cols = _axis_span(self, 0, row), _axis_span(self, 1, col)
        if rows is None or cols is None:
            return None
        return cols[0], rows[0], cols[1], rows[1]


@lru_cache(maxsize=65536)
def _axis_span(view: View, axis: int, index: int) -> Interval | None:
    """The original pixels along ``axis`` that reach the ``index``-th token row (axis 0) or column
    (axis 1) of ``view``: back through the grid steps, the cell, then the pixel steps. Cached: a
    view's R×C tokens need only R + C walks."""
    span: Interval | None = (index, index + 1)
    for step in reversed(view.grid_steps):
        span = step.back(axis, span) if span else None
    if span is not None:
        span = (span[0] * view.cell[axis], span[1] * view.cell[axis])
    for step in reversed(view.steps):
        span = step.back(axis, span) if span else None
    return span


@dataclass(frozen=True)
class ImageGeometry:
    """Where each visual token of one image sits, in the order of the image's visual positions.

    - ``size``: the original image's (height, width);
    - ``views``: the name of each view (``image``, ``base``, ``tile R,C``, ``global``, …);
    - ``view``, ``row``, ``col``: (n_visual,) ints, the token's view and its cell in that view's
      token grid (``col`` is -1 for an image-newline feature, which stands for no patch);
    - ``rects``: (n_visual, 4) float ``[x0, y0, x1, y1)`` in original pixels, NaN where the token
      sees no pixel;
    - ``unseen``: (k, 4) rectangles of original pixels that reach no token (a centre crop's edges).

    >>> geometry = image_geometry((30, 30), (View("image", (), (14, 14), (2, 2)),), grid_tokens(0, (2, 2)))
    >>> geometry.rects[3].tolist(), geometry.unseen.tolist()
    ([14.0, 14.0, 28.0, 28.0], [[28.0, 0.0, 30.0, 28.0], [0.0, 28.0, 30.0, 30.0]])
    """

    size: tuple[int, int]
    views: tuple[str, ...]
    view: np.ndarray
    row: np.ndarray
    col: np.ndarray
    rects: np.ndarray

    @cached_property
    def unseen(self) -> np.ndarray:
        """(k, 4) rectangles of original pixels that reach no token (a centre crop's edges)."""
        return unseen_rects(self.size, self.rects)

    def __len__(self) -> int:
        return len(self.view)

    def overlapping(self, box: Sequence[float]) -> np.ndarray:
        """(n_visual,) bool: tokens whose rectangle shares a positive area with ``box``
        ``(x0, y0, x1, y1)`` in original pixels (the rule that makes a box a ``region``); for boxes
        (k, 4), (k, n_visual)."""
        b, r = np.asarray(box, dtype=float)[..., None, :], self.rects
        with np.errstate(invalid="ignore"):
            return ((np.minimum(r[:, 2], b[..., 2]) > np.maximum(r[:, 0], b[..., 0]))
                    & (np.minimum(r[:, 3], b[..., 3]) > np.maximum(r[:, 1], b[..., 1])))

    def matched_boxes(self, box: Sequence[float], n: int, rng: np.random.Generator,
                      candidates: int = 1024) -> np.ndarray:
        """(≤ n, 4) control boxes for ``box``: its width and height, moved to random integer places
        inside the image, that overlap as many tokens as ``box`` does but not the same ones (so a
        region effect is compared with the same token count elsewhere). ``candidates`` places are
        drawn; fewer than ``n`` come back when fewer qualify (none for a box covering every token).

        >>> geometry = image_geometry((56, 56), (View("image", (), (14, 14), (4, 4)),), grid_tokens(0, (4, 4)))
        >>> boxes = geometry.matched_boxes((0, 0, 20, 20), 3, np.random.default_rng(0))
        >>> [int(geometry.overlapping(b).sum()) for b in boxes]
        [4, 4, 4]"""
        height, width = self.size
        x0, y0, x1, y1 = (float(v) for v in box)
        w, h = min(x1, width) - max(x0, 0), min(y1, height) - max(y0, 0)
        places = rng.integers(0, [int(width - w) + 1, int(height - h) + 1], size=(candidates, 2))
        boxes = np.concatenate([places, places + [w, h]], axis=1).astype(float)
        target = self.overlapping(box)
        hits = self.overlapping(boxes)
        keep = (hits.sum(1) == target.sum()) & (hits != target).any(1)
        found = boxes[keep]
        return found[rng.permutation(len(found))[:n]]


#: A token of a layout: (view index, row, col); col -1 marks an image-newline feature of that row.
Token = tuple[int, int, int]


def grid_tokens(view_index: int, grid: tuple[int, int], newline: bool = False) -> list[Token]:
    """A view's tokens in row-major order, with a newline feature after each row if ``newline``."""
    tokens: list[Token] = []
    for row in range(grid[0]):
        tokens += [(view_index, row, col) for col in range(grid[1])]
        if newline:
            tokens.append((view_index, row, -1))
    return tokens


def one_view(name: str, steps: tuple, cell: tuple[int, int], grid: tuple[int, int]) -> tuple[list[View], list[Token]]:
    """A layout of one view whose tokens run row by row."""
    return [View(name, steps, cell, grid)], grid_tokens(0, grid)


def image_geometry(size: tuple[int, int], views: Sequence[View], tokens: Sequence[Token]) -> ImageGeometry:
    """The geometry of an image's visual tokens from its views and the tokens' order."""
    rects = np.full((len(tokens), 4), np.nan)
    for k, (v, row, col) in enumerate(tokens):
        rect = views[v].rect(row, col) if col >= 0 else None
        if rect is not None:
            rects[k] = rect
    array = np.asarray(tokens, dtype=np.int64).reshape(-1, 3)
    return ImageGeometry(size=tuple(size), views=tuple(v.name for v in views), view=array[:, 0], row=array[:, 1],
                         col=array[:, 2], rects=rects)


def unseen_rects(size: tuple[int, int], rects: np.ndarray) -> np.ndarray:
    """Rectangles covering the original pixels no token's rectangle holds: a sweep over the grid
    that the rectangles' edges cut the image into (each cell wholly in or out), runs of uncovered
    cells merged along a band, and a run merged into the one above when their columns agree."""
    height, width = size
    seen = rects[~np.isnan(rects).any(axis=1)]
    xs = np.unique(np.concatenate([[0, width], seen[:, [0, 2]].ravel()]))
    ys = np.unique(np.concatenate([[0, height], seen[:, [1, 3]].ravel()]))
    done: list[list[float]] = []
    open_runs: dict[tuple[float, float], list[float]] = {}
    for y0, y1 in zip(ys[:-1], ys[1:]):
        covered = np.zeros(len(xs) - 1, dtype=bool)
        for x0, _, x1, _ in seen[(seen[:, 1] <= y0) & (seen[:, 3] >= y1)]:
            covered |= (xs[:-1] >= x0) & (xs[1:] <= x1)
        runs, start = [], None
        for i, hit in enumerate([*covered, True]):
            if not hit and start is None:
                start = i
            elif hit and start is not None:
                runs.append((float(xs[start]), float(xs[i])))
                start = None
        for key in [k for k in open_runs if k not in runs]:
            done.append(open_runs.pop(key))
        for run in runs:
            if run in open_runs:
                open_runs[run][3] = float(y1)
            else:
                open_runs[run] = [run[0], float(y0), run[1], float(y1)]
    done += open_runs.values()
    return np.asarray(sorted(done, key=lambda r: (r[1], r[0])), dtype=float).reshape(-1, 4)


# -- processor facts every layout reads ------------------------------------------------------

def kernel_of(image_processor: Any) -> str:
    """The resampling kernel's name from a processor's ``resample`` (a PIL code or a torchvision mode)."""
    resample = getattr(image_processor, "resample", 3)
    name = getattr(resample, "value", resample)
    return PIL_KERNELS[name] if isinstance(name, int) else str(name).lower()


def patch_of(config: Any) -> int:
    """The vision tower's patch side (configs store an int or a pair)."""
    patch = config.vision_config.patch_size
    return int(patch[0] if isinstance(patch, (list, tuple)) else patch)


def fixed_size(size: Any) -> tuple[int, int]:
    """(height, width) of a processor's fixed ``size``."""
    return int(size["height"]), int(size["width"])
