"""Pathfinder images (Linsley et al. 2018; LRA's Pathfinder and Path-X), generated locally.

Each image holds two target contours whose first paddles start ``seed_distance`` apart, a few
short distractor contours, and two marker dots: one on the first target's starting end and one
on the far end of either the same contour (label 1) or the other target (label 0). A contour
is a chain of short straight "paddles" separated by a small gap, each turning from the last by
at most ``90 deg / continuity`` (turns weighted by cos^2 as in the original generator). Unlike
the original, a paddle keeps ``clearance`` (more than the in-contour gap) from every other
contour and from markers it does not carry, so "joined by one contour" is well defined.

Geometry is in output-pixel units; :func:`render` rasterizes a scene at any sampling scale,
and images are rendered at ``antialias`` samples per pixel and box-filtered to uint8.

Settings follow LRA's generator (google-research/long-range-arena, lra_benchmarks/data/pathfinder.py:
drewlinsley/pathfinder's snakes2 with, at 32 px, paddle_length 2, paddle_thickness 0.5, paddle_margin 1,
marker_radius 1.5, seed_distance 7, continuity 1.0, distractors of contour_length // 3 paddles within
20 paddles, snake contrast 2 x paddle contrast 0.75, antialias_scale 2; at 128 px, paddle_length 5
(the default), thickness 1.5, margin 2 or 3 (2.5 here), marker_radius 3, seed_distance 20, continuity
1.8, 35 distractor paddles, snake contrast 0.9), including its single-paddle distractors (snakes2's
``use_single_paddles``, default on): as many as its paddle budget allows or until no place is left.
Contrast is an intensity scale: 0.75 x 2 saturates (contours at full intensity at 32 px), 0.9 at 128 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

PATHFINDER_GENERATOR_VERSION = 2
"""Changes when generated images change (2: LRA's single-paddle distractors, contrast, antialiasing)."""

CONTOUR_PADDLES = {"easy": 6, "intermediate": 9, "hard": 14}
"""Paddles per target contour (LRA's curv_baseline, curv_contour_length_9, ..._14)."""


@dataclass(frozen=True)
class PathfinderStyle:
    """Drawing parameters of one resolution (lengths in output pixels)."""

    resolution: int
    paddle_length: float
    gap: float
    """Gap between successive paddles of one contour."""
    thickness: float
    clearance: float
    """Minimum distance between paddles of different contours (> gap + thickness)."""
    marker_radius: float
    seed_distance: float
    continuity: float
    """Turns between paddles are at most 90 deg / continuity."""
    distractor_budget: int
    """Distractor paddles in all: contours of ``contour_paddles // 3`` paddles each."""
    contour_intensity: float = 1.0
    """Contours are drawn at this share of full intensity (markers at full intensity)."""
    contour_paddles: int = 14
    padding: float = 1.0
    antialias: int = 2
    max_tries: int = 20
    single_paddle_failures: int = 3
    """Single-paddle distractors are placed until this many draws of ``max_tries`` candidates in a row
    find no room."""

    @property
    def single_paddles(self) -> int:
        """snakes2's single-paddle budget: int(150 / ((7.5 + 13 m + 4 m^2) / 123.5)) paddles in all (m the
        in-contour margin, here the gap), less the targets' and the distractor contours' paddles."""
        total = int(150 / ((7.5 + 13 * self.gap + 4 * self.gap**2) / 123.5))
        distractors = (self.distractor_budget // max(1, self.contour_paddles // 3)) * (
            self.contour_paddles // 3
        )
        return max(0, total - 2 * self.contour_paddles - distractors)


_STYLE_32 = PathfinderStyle(32, 2.0, 1.0, 0.5, 2.0, 1.5, 7.0, 1.0, 20, contour_intensity=1.0)
_STYLE_128 = PathfinderStyle(128, 5.0, 2.5, 1.5, 4.5, 3.0, 20.0, 1.8, 35, contour_intensity=0.9)


def style_for(resolution: int, difficulty: str = "hard") -> PathfinderStyle:
    """LRA-like parameters: Path-X's at 128, Pathfinder-32's scaled to ``resolution`` otherwise."""
    if difficulty not in CONTOUR_PADDLES:
        raise ValueError(f"difficulty must be one of {list(CONTOUR_PADDLES)}, got {difficulty!r}")
    if resolution < 32:
        raise ValueError(f"Pathfinder resolution must be >= 32, got {resolution}")
    base = _STYLE_128 if resolution == 128 else _STYLE_32
    factor = resolution / base.resolution
    return replace(
        base,
        resolution=resolution,
        paddle_length=base.paddle_length * factor,
        gap=base.gap * factor,
        thickness=base.thickness * factor,
        clearance=base.clearance * factor,
        marker_radius=base.marker_radius * factor,
        seed_distance=base.seed_distance * factor,
        contour_paddles=CONTOUR_PADDLES[difficulty],
    )


@dataclass
class Scene:
    """The geometry of one image."""

    contours: list[np.ndarray]
    """Per contour, its paddles as float (n, 2, 2): [paddle, end, (x, y)]; targets are 0 and 1."""
    markers: np.ndarray
    """Marker centers, float (2, 2)."""
    marker_owners: tuple[int, int]
    """The contour each marker sits on: (0, 0) if label 1, (0, 1) if label 0."""
    label: int


def _point_segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance from ``point`` to segment ``(a, b)``, broadcast over leading dimensions (..., 2)."""
    abx, aby = b[..., 0] - a[..., 0], b[..., 1] - a[..., 1]
    apx, apy = point[..., 0] - a[..., 0], point[..., 1] - a[..., 1]
    t = np.minimum(np.maximum((apx * abx + apy * aby) / np.maximum(abx * abx + aby * aby, 1e-12), 0.0), 1.0)
    return np.sqrt((apx - t * abx) ** 2 + (apy - t * aby) ** 2)


def segment_distances(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Distances (float (n, m), 0 where crossing) between segments (p0[i], p1[i]) and (q0[j], q1[j])."""
    p0, p1, q0, q1 = p0[:, None], p1[:, None], q0[None], q1[None]

    def side(o, a, b):
        return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (
            b[..., 0] - o[..., 0]
        )

    distance = np.minimum(
        np.minimum(_point_segment_distance(p0, q0, q1), _point_segment_distance(p1, q0, q1)),
        np.minimum(_point_segment_distance(q0, p0, p1), _point_segment_distance(q1, p0, p1)),
    )
    crossing = (side(q0, q1, p0) * side(q0, q1, p1) < 0) & (side(p0, p1, q0) * side(p0, p1, q1) < 0)
    return np.where(crossing, 0.0, distance)


def _unit(angles: np.ndarray | float) -> np.ndarray:
    angles = np.asarray(angles, dtype=float)
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def _sample_turns(rng: np.random.Generator, continuity: float, count: int) -> np.ndarray:
    """Up to ``count`` turns, density ~ cos^2(turn * continuity) on |turn| < 90 deg / continuity."""
    limit = math.pi / (2 * continuity)
    turns = rng.uniform(-limit, limit, size=2 * count)
    return turns[rng.random(2 * count) < np.cos(turns * continuity) ** 2][:count]


_SLACK = 1e-6
"""Widening of the culling boxes below. Rounding errors (~1e-13 px) never reach it, so a paddle that a box
culls is one the exact test would have let through: the tests decide as the vectorized ones
(:func:`segment_distances`, :func:`_point_segment_distance`), in the same float operations, on fewer pairs."""


def _paddle(ax: float, ay: float, bx: float, by: float) -> tuple[float, ...]:
    """A paddle as the exact tests use it: (ax, ay, bx, by, abx, aby, max(|ab|^2, 1e-12))."""
    abx, aby = bx - ax, by - ay
    return ax, ay, bx, by, abx, aby, max(abx * abx + aby * aby, 1e-12)


def _extent(paddle: tuple[float, ...]) -> tuple[float, float, float, float]:
    """The bounding box of a :func:`_paddle`: (min x, min y, max x, max y)."""
    ax, ay, bx, by = paddle[:4]
    return min(ax, bx), min(ay, by), max(ax, bx), max(ay, by)


def _distance_and_side(px, py, ax, ay, abx, aby, den) -> tuple[float, float]:
    """Distance from point p to the segment (a, a + ab) (``den`` = max(|ab|^2, 1e-12)) and the cross product
    ab x (p - a): the float operations of :func:`_point_segment_distance` and of segment_distances' ``side``."""
    apx, apy = px - ax, py - ay
    t = min(max((apx * abx + apy * aby) / den, 0.0), 1.0)
    dx, dy = apx - t * abx, apy - t * aby
    return math.sqrt(dx * dx + dy * dy), abx * apy - aby * apx


def _too_close(p: tuple[float, ...], q: tuple[float, ...], clearance: float) -> bool:
    """``segment_distances(p, q) < clearance`` for two :func:`_paddle` tuples, computed as it does."""
    p0x, p0y, p1x, p1y, pabx, paby, pden = p
    q0x, q0y, q1x, q1y, qabx, qaby, qden = q
    d1, s1 = _distance_and_side(p0x, p0y, q0x, q0y, qabx, qaby, qden)
    d2, s2 = _distance_and_side(p1x, p1y, q0x, q0y, qabx, qaby, qden)
    d3, s3 = _distance_and_side(q0x, q0y, p0x, p0y, pabx, paby, pden)
    d4, s4 = _distance_and_side(q1x, q1y, p0x, p0y, pabx, paby, pden)
    return min(d1, d2, d3, d4) < clearance or (s1 * s2 < 0 and s3 * s4 < 0)


def _blocked(paddle: tuple[float, ...], others: list[tuple[float, ...]], clearance: float) -> bool:
    """Whether ``paddle`` comes closer than ``clearance`` to one of ``others`` (:func:`_paddle` tuples); pairs
    whose bounding boxes are farther apart are skipped."""
    low_x, low_y, high_x, high_y = _extent(paddle)
    low_x, low_y, high_x, high_y = low_x - clearance, low_y - clearance, high_x + clearance, high_y + clearance
    for other in others:
        ax, ay, bx, by = other[:4]
        if (
            min(ax, bx) <= high_x + _SLACK
            and max(ax, bx) >= low_x - _SLACK
            and min(ay, by) <= high_y + _SLACK
            and max(ay, by) >= low_y - _SLACK
            and _too_close(paddle, other, clearance)
        ):
            return True
    return False


def _touches_disc(paddle: tuple[float, ...], discs: list[list[float]], length: float) -> bool:
    """Whether ``paddle`` (a :func:`_paddle` of length <= ``length``) comes within the radius of one of the
    (x, y, radius) ``discs``; discs farther than that from its start are skipped."""
    ax, ay, _, _, abx, aby, den = paddle
    return any(
        max(abs(x - ax), abs(y - ay)) <= radius + length + _SLACK
        and _distance_and_side(x, y, ax, ay, abx, aby, den)[0] < radius
        for x, y, radius in discs
    )


class _Placed:
    """The paddles placed so far in a scene, in order: :func:`_paddle` tuples for the exact tests, and their
    bounding boxes as float (4, capacity) rows (min x, min y, -max x, -max y) to cull far ones at once."""

    def __init__(self, capacity: int = 128):
        self.paddles: list[tuple[float, ...]] = []
        self.boxes = np.empty((4, capacity))

    def __len__(self) -> int:
        return len(self.paddles)

    def add(self, paddle: tuple[float, ...]) -> None:
        count = len(self.paddles)
        if count == self.boxes.shape[1]:
            self.boxes = np.concatenate([self.boxes, np.empty_like(self.boxes)], axis=1)
        low_x, low_y, high_x, high_y = _extent(paddle)
        self.boxes[:, count] = low_x, low_y, -high_x, -high_y
        self.paddles.append(paddle)

    def truncate(self, count: int) -> None:
        del self.paddles[count:]

    def near(self, count: int, bounds: np.ndarray) -> np.ndarray:
        """Which of the first ``count`` paddles meet the boxes ``bounds`` (float (4, ...): max x, max y, -min x,
        -min y, see :func:`_box_bounds`): bool (..., count)."""
        boxes = self.boxes[:, :count].reshape((4,) + (1,) * (bounds.ndim - 1) + (count,))
        return (boxes < bounds[..., None]).all(axis=0)

    def contour(self, start: int) -> np.ndarray:
        """The paddles from index ``start`` on as float (n, 2, 2)."""
        return np.array([paddle[:4] for paddle in self.paddles[start:]]).reshape(-1, 2, 2)


def _box_bounds(low_x, low_y, high_x, high_y) -> np.ndarray:
    """The boxes [low, high] (floats or float (n,) arrays), widened by the slack, as :meth:`_Placed.near`'s
    bounds: float (4,) or (4, n)."""
    return np.array([high_x + _SLACK, high_y + _SLACK, _SLACK - low_x, _SLACK - low_y])


def _first_fit(
    style: PathfinderStyle, angles: np.ndarray, center, first: bool, placed: _Placed, count: int, keep_off: list
) -> tuple[int, tuple[float, ...]] | None:
    """The first candidate paddle, in ``angles``' order, that fits, with its index, or None.

    Candidates start at ``center`` (the contour's start if ``first``, else its head plus the gap along the
    angle). One fits if it lies inside the image, keeps ``clearance`` from those of the first ``count``
    paddles of ``placed`` within reach of ``center``, and keeps off the ``keep_off`` (x, y, radius) discs.
    """
    cx, cy = float(center[0]), float(center[1])
    low, high = style.padding + style.thickness, style.resolution - style.padding - style.thickness
    step = style.gap + style.paddle_length
    reach = step + style.clearance  # only paddles within reach of this step can block it
    bounds = _box_bounds(cx - reach, cy - reach, cx + reach, cy + reach)
    others = [placed.paddles[j] for j in np.flatnonzero(placed.near(count, bounds)).tolist()]
    others = [other for other in others if _distance_and_side(cx, cy, *other[:2], *other[4:])[0] < reach]
    discs = [disc for disc in keep_off if max(abs(disc[0] - cx), abs(disc[1] - cy)) <= step + disc[2] + _SLACK]
    for index, (cos, sin) in enumerate(zip(np.cos(angles).tolist(), np.sin(angles).tolist())):
        bx, by = (cx, cy) if first else (cx + style.gap * cos, cy + style.gap * sin)
        ex, ey = bx + style.paddle_length * cos, by + style.paddle_length * sin
        if not (low <= bx <= high and low <= by <= high and low <= ex <= high and low <= ey <= high):
            continue
        paddle = _paddle(bx, by, ex, ey)
        if not _touches_disc(paddle, discs, style.paddle_length) and not _blocked(paddle, others, style.clearance):
            return index, paddle
    return None


def _grow(rng, style: PathfinderStyle, start, paddles: int, placed: _Placed, keep_off: np.ndarray):
    """A contour of ``paddles`` paddles from ``start`` (float (n, 2, 2)), or None if it gets stuck.

    ``placed`` holds the other contours' paddles and gets this one's (removed again if it gets stuck);
    ``keep_off`` (k, 3) are (x, y, radius) discs. Each paddle is drawn among ``max_tries`` candidate
    directions at once (the first that fits is kept); when none fits, the previous paddle is redrawn (up to
    ``paddles`` times per contour).
    """
    obstacles, discs = len(placed), keep_off.tolist()
    headings: list[float] = []
    backtracks = 0
    while len(headings) < paddles:
        if not headings:
            angles = rng.uniform(-math.pi, math.pi, size=style.max_tries)
            center = start
        else:
            angles = headings[-1] + _sample_turns(rng, style.continuity, style.max_tries)
            center = placed.paddles[-1][2:4]
        blockers = obstacles + max(len(headings) - 1, 0)  # not the previous paddle
        fit = _first_fit(style, angles, center, not headings, placed, blockers, discs)
        if fit is not None:
            placed.add(fit[1])
            headings.append(float(angles[fit[0]]))
        elif headings and backtracks < paddles:
            placed.truncate(len(placed) - 1)
            headings.pop()
            backtracks += 1
        else:
            placed.truncate(obstacles)
            return None
    return placed.contour(obstacles)


def _marker_guard(style: PathfinderStyle) -> float:
    """Distance a marker's center keeps from contours it does not sit on."""
    return style.marker_radius + style.clearance


def _markers_clear(markers: np.ndarray, owners: tuple[int, int], contours: list[np.ndarray], guard: float) -> bool:
    """Whether each marker (float (2, 2)) keeps ``guard`` from every contour but the one it sits on."""
    paddles = np.concatenate(contours)
    contour_of = np.repeat(np.arange(len(contours)), [len(contour) for contour in contours])
    distances = _point_segment_distance(markers[:, None], paddles[None, :, 0], paddles[None, :, 1])  # (2, n)
    return not (distances[contour_of[None] != np.array(owners)[:, None]] < guard).any()


def generate_scene(rng: np.random.Generator, style: PathfinderStyle) -> Scene | None:
    """One random scene, or None when this attempt got stuck (the caller retries)."""
    label = int(rng.integers(2))
    margin = style.padding + style.marker_radius + style.thickness
    guard = _marker_guard(style)
    seed_a = rng.uniform(margin, style.resolution - margin, size=2)
    seeds_b = seed_a + style.seed_distance * _unit(rng.uniform(-math.pi, math.pi, size=16))
    inside = np.all((seeds_b >= margin) & (seeds_b <= style.resolution - margin), axis=1)
    if not inside.any():
        return None
    seed_b = seeds_b[int(np.argmax(inside))]
    placed = _Placed()
    contour_a = _grow(rng, style, seed_a, style.contour_paddles, placed, np.array([[*seed_b, guard]]))
    if contour_a is None:
        return None
    keep_off_b = np.array([[*seed_a, guard], [*contour_a[-1, 1], guard]])
    contour_b = _grow(rng, style, seed_b, style.contour_paddles, placed, keep_off_b)
    if contour_b is None:
        return None
    contours = [contour_a, contour_b]
    ends = np.array(
        [[*seed_a, guard], [*seed_b, guard], [*contour_a[-1, 1], guard], [*contour_b[-1, 1], guard]]
    )
    distractor_paddles = max(1, style.contour_paddles // 3)
    for _ in range(style.distractor_budget // distractor_paddles):
        start = rng.uniform(margin, style.resolution - margin, size=2)
        grown = _grow(rng, style, start, distractor_paddles, placed, ends)
        if grown is not None:
            contours.append(grown)
    owners = (0, 0) if label == 1 else (0, 1)
    markers = np.stack([seed_a, contours[owners[1]][-1, 1]])
    if not _markers_clear(markers, owners, contours, guard):  # a marker must not touch contours it does not carry
        return None
    if owners[0] != owners[1] and np.linalg.norm(markers[0] - markers[1]) < guard + style.marker_radius:
        return None  # nor the other target's marker
    contours += _single_paddles(rng, style, placed, ends)
    return Scene(contours, markers, owners, label)


def _first_free(style: PathfinderStyle, begins: np.ndarray, ends: np.ndarray, placed: _Placed, discs) -> int | None:
    """Index of the first candidate paddle (begins, ends: float (n, 2)) with its end inside the image that keeps
    ``clearance`` from all of ``placed`` and off the (x, y, radius) ``discs``, or None."""
    low, high = style.padding + style.thickness, style.resolution - style.padding - style.thickness
    lows, highs = np.minimum(begins, ends) - style.clearance, np.maximum(begins, ends) + style.clearance
    near = placed.near(len(placed), _box_bounds(lows[:, 0], lows[:, 1], highs[:, 0], highs[:, 1]))  # (n, m)
    for index, ((bx, by), (ex, ey)) in enumerate(zip(begins.tolist(), ends.tolist())):
        if not (low <= ex <= high and low <= ey <= high):
            continue
        paddle = _paddle(bx, by, ex, ey)
        if _touches_disc(paddle, discs, style.paddle_length):
            continue
        others = [placed.paddles[j] for j in np.flatnonzero(near[index]).tolist()]
        if not any(_too_close(paddle, other, style.clearance) for other in others):
            return index
    return None


def _single_paddles(rng, style: PathfinderStyle, placed: _Placed, keep_off: np.ndarray) -> list[np.ndarray]:
    """Single-paddle distractors (each a (1, 2, 2) contour) keeping ``clearance`` from ``placed`` (to which they
    are added) and each other and off the ``keep_off`` discs: up to ``style.single_paddles``, drawn
    ``style.max_tries`` candidates at a time, until a whole draw finds no room ``style.single_paddle_failures``
    times in a row."""
    margin = style.padding + style.thickness
    low, high = margin, style.resolution - margin
    discs = keep_off.tolist()
    singles: list[np.ndarray] = []
    failures = 0
    while len(singles) < style.single_paddles and failures < style.single_paddle_failures:
        begins = rng.uniform(low, high, size=(style.max_tries, 2))
        ends = begins + style.paddle_length * _unit(rng.uniform(-math.pi, math.pi, size=style.max_tries))
        choice = _first_free(style, begins, ends, placed, discs)
        if choice is None:
            failures += 1
            continue
        singles.append(np.stack([begins[choice], ends[choice]])[None])
        placed.add(_paddle(*begins[choice].tolist(), *ends[choice].tolist()))
        failures = 0
    return singles


def _draw(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_width: float, intensity: float, scale: int):
    """Set ``canvas`` (float32 (R * scale, R * scale)) to at least ``intensity`` on the samples within
    ``half_width`` of the segment (p0, p1) (float (2,)), one segment at a time."""
    size = len(canvas)
    low = np.floor((np.minimum(p0, p1) - half_width) * scale).astype(int).clip(0, size)
    high = np.ceil((np.maximum(p0, p1) + half_width) * scale).astype(int).clip(0, size)
    xs = (np.arange(low[0], high[0]) + 0.5) / scale
    ys = (np.arange(low[1], high[1]) + 0.5) / scale
    points = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    if not len(points):
        return
    ab = p1 - p0
    t = np.clip((points - p0) @ ab / max(ab @ ab, 1e-12), 0, 1)
    inside = np.linalg.norm(p0 + t[:, None] * ab - points, axis=1) <= half_width
    region = canvas[low[1] : high[1], low[0] : high[0]]
    inside = inside.reshape(region.shape)
    region[inside] = np.maximum(region[inside], intensity)


def _draw_all(canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_width: float, intensity: float, scale: int):
    """:func:`_draw` for all segments (p0, p1) (float (n, 2)) at once: each segment's samples in a window
    as wide as the widest segment's box. Segments with a sample within 1e-9 of ``half_width`` (where this
    vectorized distance may round differently) are drawn by :func:`_draw` itself."""
    size = len(canvas)
    low = np.floor((np.minimum(p0, p1) - half_width) * scale).astype(int).clip(0, size)  # (n, 2)
    high = np.ceil((np.maximum(p0, p1) + half_width) * scale).astype(int).clip(0, size)
    width = int((high - low).max(initial=0))
    if width <= 0:
        return
    cols = low[:, 0, None] + np.arange(width)  # (n, width)
    rows = low[:, 1, None] + np.arange(width)
    window = (rows < high[:, 1, None])[:, :, None] & (cols < high[:, 0, None])[:, None, :]  # (n, rows, cols)
    ab = (p1 - p0)[:, :, None, None]
    apx = ((cols + 0.5) / scale)[:, None, :] - p0[:, 0, None, None]
    apy = ((rows + 0.5) / scale)[:, :, None] - p0[:, 1, None, None]
    t = np.clip((apx * ab[:, 0] + apy * ab[:, 1]) / np.maximum((ab * ab).sum(1), 1e-12), 0, 1)
    distance = np.sqrt((apx - t * ab[:, 0]) ** 2 + (apy - t * ab[:, 1]) ** 2)
    unsure = (window & (np.abs(distance - half_width) <= 1e-9)).any(axis=(1, 2))
    inside = window & (distance <= half_width) & ~unsure[:, None, None]
    segment, row, col = np.nonzero(inside)
    at = rows[segment, row], cols[segment, col]
    canvas[at] = np.maximum(canvas[at], intensity)
    for index in np.flatnonzero(unsure):
        _draw(canvas, p0[index], p1[index], half_width, intensity, scale)


def render(scene: Scene, style: PathfinderStyle, scale: int) -> np.ndarray:
    """Rasterize ``scene`` with ``scale`` samples per pixel: float32 (R * scale, R * scale), 0 outside the
    drawing, ``style.contour_intensity`` on contours, 1 on markers."""
    size = style.resolution * scale
    canvas = np.zeros((size, size), dtype=np.float32)
    paddles = np.concatenate(scene.contours)
    _draw_all(canvas, paddles[:, 0], paddles[:, 1], style.thickness / 2, style.contour_intensity, scale)
    _draw_all(canvas, scene.markers, scene.markers, style.marker_radius, 1.0, scale)
    return canvas


def generate_image(rng: np.random.Generator, style: PathfinderStyle) -> tuple[np.ndarray, int, Scene]:
    """A Pathfinder image (uint8 (R, R), antialiased), its label (1 = markers joined) and its scene."""
    while (scene := generate_scene(rng, style)) is None:
        pass
    fine = render(scene, style, style.antialias)
    size = style.resolution
    image = fine.reshape(size, style.antialias, size, style.antialias).mean(axis=(1, 3))
    return np.round(image * 255).astype(np.uint8), scene.label, scene
