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


def _side(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cross product (a - o) x (b - o), broadcast over leading dimensions (..., 2)."""
    return (a[..., 0] - o[..., 0]) * (b[..., 1] - o[..., 1]) - (a[..., 1] - o[..., 1]) * (
        b[..., 0] - o[..., 0]
    )


def segment_distances(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Distances (float (n, m), 0 where crossing) between segments (p0[i], p1[i]) and (q0[j], q1[j])."""
    p0, p1, q0, q1 = p0[:, None], p1[:, None], q0[None], q1[None]
    distance = np.minimum(
        np.minimum(_point_segment_distance(p0, q0, q1), _point_segment_distance(p1, q0, q1)),
        np.minimum(_point_segment_distance(q0, p0, p1), _point_segment_distance(q1, p0, p1)),
    )
    crossing = (_side(q0, q1, p0) * _side(q0, q1, p1) < 0) & (_side(p0, p1, q0) * _side(p0, p1, q1) < 0)
    return np.where(crossing, 0.0, distance)


def _unit(angles: np.ndarray | float) -> np.ndarray:
    angles = np.asarray(angles, dtype=float)
    return np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def _sample_turns(rng: np.random.Generator, continuity: float, count: int) -> np.ndarray:
    """Up to ``count`` turns, density ~ cos^2(turn * continuity) on |turn| < 90 deg / continuity."""
    limit = math.pi / (2 * continuity)
    turns = rng.uniform(-limit, limit, size=2 * count)
    return turns[rng.random(2 * count) < np.cos(turns * continuity) ** 2][:count]


# Clearance tests. A candidate paddle fits when it keeps ``clearance`` from other paddles (as
# ``segment_distances(...) < clearance`` decides) and keeps off discs (as ``_point_segment_distance(...) <
# radius`` decides). The tests below make those decisions in the very float operations of those functions,
# so they agree bit for bit, but only on the pairs that a cheap culling test (bounding boxes or centers,
# widened by _SLACK) cannot rule out: a pair it rules out is farther apart than the threshold plus _SLACK,
# far beyond rounding errors (~1e-13 px), so the exact test would have let it through too.

_SLACK = 1e-6
"""Widening of the culling tests (output pixels)."""


def _too_close_pairs(p: np.ndarray, q: np.ndarray, clearance: float) -> np.ndarray:
    """Whether the segments p[i] and q[i] (float (k, 4): x0, y0, x1, y1) come closer than ``clearance``: bool
    (k,), pair by pair ``segment_distances(...) < clearance`` (its float operations, on x and y apart)."""
    (p0x, p0y, p1x, p1y), (q0x, q0y, q1x, q1y) = p.T, q.T
    px, py = np.concatenate([p0x, p1x, q0x, q1x]), np.concatenate([p0y, p1y, q0y, q1y])  # each end ...
    ax, ay = np.concatenate([q0x, q0x, p0x, p0x]), np.concatenate([q0y, q0y, p0y, p0y])  # ... against the
    bx, by = np.concatenate([q1x, q1x, p1x, p1x]), np.concatenate([q1y, q1y, p1y, p1y])  # other segment
    abx, aby, apx, apy = bx - ax, by - ay, px - ax, py - ay
    t = np.minimum(np.maximum((apx * abx + apy * aby) / np.maximum(abx * abx + aby * aby, 1e-12), 0.0), 1.0)
    close = (np.sqrt((apx - t * abx) ** 2 + (apy - t * aby) ** 2) < clearance).reshape(4, -1).any(axis=0)
    sides = (abx * apy - aby * apx).reshape(4, -1)  # _side(a, b, p)
    return close | ((sides[0] * sides[1] < 0) & (sides[2] * sides[3] < 0))


def _paddle(ax: float, ay: float, bx: float, by: float) -> tuple[float, ...]:
    """A paddle as the scalar tests use it: (ax, ay, bx, by, abx, aby, max(|ab|^2, 1e-12)), then its bounding
    box (min x, max x, min y, max y)."""
    abx, aby = bx - ax, by - ay
    low_x, high_x = (ax, bx) if ax < bx else (bx, ax)
    low_y, high_y = (ay, by) if ay < by else (by, ay)
    return ax, ay, bx, by, abx, aby, max(abx * abx + aby * aby, 1e-12), low_x, high_x, low_y, high_y


def _distance_and_side(px, py, ax, ay, abx, aby, den) -> tuple[float, float]:
    """Distance from point p to the segment (a, a + ab) (``den`` = max(|ab|^2, 1e-12)) and the cross product
    ab x (p - a), in the float operations of :func:`_point_segment_distance` and :func:`_side`."""
    apx, apy = px - ax, py - ay
    t = min(max((apx * abx + apy * aby) / den, 0.0), 1.0)
    dx, dy = apx - t * abx, apy - t * aby
    return math.sqrt(dx * dx + dy * dy), abx * apy - aby * apx


def _too_close(p: tuple[float, ...], q: tuple[float, ...], clearance: float) -> bool:
    """``segment_distances(p, q) < clearance`` for two :func:`_paddle` tuples, in its float operations."""
    p0x, p0y, p1x, p1y, pabx, paby, pden, _, _, _, _ = p
    q0x, q0y, q1x, q1y, qabx, qaby, qden, _, _, _, _ = q
    d1, s1 = _distance_and_side(p0x, p0y, q0x, q0y, qabx, qaby, qden)
    if d1 < clearance:
        return True
    d2, s2 = _distance_and_side(p1x, p1y, q0x, q0y, qabx, qaby, qden)
    if d2 < clearance:
        return True
    d3, s3 = _distance_and_side(q0x, q0y, p0x, p0y, pabx, paby, pden)
    if d3 < clearance:
        return True
    d4, s4 = _distance_and_side(q1x, q1y, p0x, p0y, pabx, paby, pden)
    return d4 < clearance or (s1 * s2 < 0 and s3 * s4 < 0)


def _blocked(
    paddle: tuple[float, ...], others: list[tuple[float, ...]], clearance: float, reach=None
) -> bool:
    """Whether ``paddle`` comes closer than ``clearance`` to one of ``others`` (:func:`_paddle` tuples),
    skipping those whose bounding box is farther. With ``reach`` (x, y, distance), others not within that
    distance of (x, y) do not count (:func:`_grow`'s filter, in its float operations)."""
    margin = clearance + _SLACK
    low_x, high_x = paddle[7] - margin, paddle[8] + margin
    low_y, high_y = paddle[9] - margin, paddle[10] + margin
    for other in others:
        if (
            other[7] <= high_x
            and other[8] >= low_x
            and other[9] <= high_y
            and other[10] >= low_y
            and _too_close(paddle, other, clearance)
            and (
                reach is None
                or _distance_and_side(reach[0], reach[1], other[0], other[1], other[4], other[5], other[6])[0]
                < reach[2]
            )
        ):
            return True
    return False


def _touches_disc(paddle: tuple[float, ...], discs: list[list[float]], length: float) -> bool:
    """Whether ``paddle`` (a :func:`_paddle` of length <= ``length``) comes within the radius of one of the
    (x, y, radius) ``discs`` (``_point_segment_distance(...) < radius``), skipping farther discs."""
    ax, ay, _, _, abx, aby, den, _, _, _, _ = paddle
    for x, y, radius in discs:
        far = radius + length + _SLACK
        if (
            abs(x - ax) <= far
            and abs(y - ay) <= far
            and _distance_and_side(x, y, ax, ay, abx, aby, den)[0] < radius
        ):
            return True
    return False


class _Placed:
    """The paddles placed so far in a scene, in order: :func:`_paddle` tuples, and their centers as complex
    (capacity,) x + iy to cull far ones at once."""

    def __init__(self, capacity: int = 128):
        self.paddles: list[tuple[float, ...]] = []
        self.centers = np.empty(capacity, dtype=complex)

    def __len__(self) -> int:
        return len(self.paddles)

    def add(self, paddle: tuple[float, ...]) -> None:
        count = len(self.paddles)
        if count == len(self.centers):
            self.centers = np.concatenate([self.centers, np.empty_like(self.centers)])
        self.centers[count] = complex(paddle[0] + paddle[2], paddle[1] + paddle[3]) / 2
        self.paddles.append(paddle)

    def truncate(self, count: int) -> None:
        del self.paddles[count:]

    def near(self, count: int, x: float, y: float, distance: float) -> list[tuple[float, ...]]:
        """Those of the first ``count`` paddles whose center lies within ``distance`` (+ slack) of (x, y)."""
        near = np.abs(self.centers[:count] - complex(x, y)) <= distance + _SLACK
        return [self.paddles[index] for index in near.nonzero()[0].tolist()]

    def segments(self, start: int = 0) -> np.ndarray:
        """The paddles from index ``start`` on as float (n, 2, 2)."""
        return np.array([paddle[:4] for paddle in self.paddles[start:]]).reshape(-1, 2, 2)


def _first_fit(
    style: PathfinderStyle, angles: np.ndarray, center, first: bool, placed: _Placed, count: int, discs: list
) -> tuple[int, tuple[float, ...]] | None:
    """The first candidate paddle, in ``angles``' order, that fits, with its index, or None.

    Candidates start at ``center`` (the contour's start if ``first``, else its head plus the gap along the
    angle). One fits if it lies inside the image, keeps ``clearance`` from those of the first ``count``
    paddles of ``placed`` within reach of ``center``, and keeps off the (x, y, radius) ``discs``.
    """
    cx, cy = float(center[0]), float(center[1])
    gap, length = style.gap, style.paddle_length
    low, high = style.padding + style.thickness, style.resolution - style.padding - style.thickness
    reach = gap + length + style.clearance  # only paddles within reach of this step can block it
    others = placed.near(count, cx, cy, reach + length / 2)
    discs = [
        disc for disc in discs if max(abs(disc[0] - cx), abs(disc[1] - cy)) <= gap + length + disc[2] + _SLACK
    ]
    for index, (cos, sin) in enumerate(zip(np.cos(angles).tolist(), np.sin(angles).tolist())):
        bx, by = (cx, cy) if first else (cx + gap * cos, cy + gap * sin)
        ex, ey = bx + length * cos, by + length * sin
        if not (low <= bx <= high and low <= by <= high and low <= ex <= high and low <= ey <= high):
            continue
        paddle = _paddle(bx, by, ex, ey)
        if _blocked(paddle, others, style.clearance, (cx, cy, reach)) or _touches_disc(paddle, discs, length):
            continue
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
    return placed.segments(obstacles)


def _marker_guard(style: PathfinderStyle) -> float:
    """Distance a marker's center keeps from contours it does not sit on."""
    return style.marker_radius + style.clearance


def _markers_clear(
    markers: np.ndarray, owners: tuple[int, int], contours: list[np.ndarray], guard: float
) -> bool:
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
    if not _markers_clear(markers, owners, contours, guard):  # a marker must not touch others' contours
        return None
    if owners[0] != owners[1] and np.linalg.norm(markers[0] - markers[1]) < guard + style.marker_radius:
        return None  # nor the other target's marker
    contours += _single_paddles(rng, style, placed, ends)
    return Scene(contours, markers, owners, label)


_SINGLE_BATCH = 16
"""Single-paddle draws made, and checked against the paddles placed so far, at once."""


def _pairs_within(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, distance: float):
    """Index arrays (i, j) of the points (x0[i], y0[i]) and (x1[j], y1[j]) (float arrays) at most ``distance``
    (+ slack) apart."""
    dx, dy = np.subtract.outer(x0, x1), np.subtract.outer(y0, y1)
    np.add(np.square(dx, out=dx), np.square(dy, out=dy), out=dx)
    return (dx <= (distance + _SLACK) ** 2).nonzero()


def _single_batch(rng, style: PathfinderStyle, placed: _Placed) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The next ``_SINGLE_BATCH`` draws of :func:`_single_paddles` (each of ``max_tries`` candidates; the same
    values as drawn one draw at a time): begins and ends float (K, T, 2), and bool (K, T): whether each
    candidate has its end inside the image and keeps ``clearance`` from all of ``placed``."""
    count, tries, length = _SINGLE_BATCH, style.max_tries, style.paddle_length
    margin = style.padding + style.thickness
    low, high = margin, style.resolution - margin
    values = rng.uniform(  # a draw: uniform(low, high, (T, 2)), then uniform(-pi, pi, T)
        np.repeat([low, -math.pi], [2 * tries, tries]),
        np.repeat([high, math.pi], [2 * tries, tries]),
        size=(count, 3 * tries),
    )
    begins = values[:, : 2 * tries].reshape(count, tries, 2)
    cos, sin = np.empty((count, tries)), np.empty((count, tries))
    for angles, draw_cos, draw_sin in zip(values[:, 2 * tries :], cos, sin):  # draw by draw, as _unit would
        np.cos(angles, out=draw_cos)
        np.sin(angles, out=draw_sin)
    ends = np.stack([begins[..., 0] + length * cos, begins[..., 1] + length * sin], axis=-1)
    fits = np.all((ends >= low) & (ends <= high), axis=-1)
    candidates = np.concatenate([begins, ends], axis=-1).reshape(-1, 4)  # x0, y0, x1, y1
    others = placed.segments().reshape(-1, 4)
    centers, other_centers = (candidates[:, :2] + candidates[:, 2:]) / 2, (others[:, :2] + others[:, 2:]) / 2
    # paddles (of length paddle_length) with centers farther apart than that plus clearance never block
    rows, cols = _pairs_within(*centers.T, *other_centers.T, length + style.clearance)
    pairs, other_pairs = np.take(candidates, rows, axis=0), np.take(others, cols, axis=0)
    fits.reshape(-1)[rows[_too_close_pairs(pairs, other_pairs, style.clearance)]] = False
    return begins, ends, fits


def _single_paddles(rng, style: PathfinderStyle, placed: _Placed, keep_off: np.ndarray) -> list[np.ndarray]:
    """Single-paddle distractors (each a (1, 2, 2) contour) keeping ``clearance`` from ``placed`` (to which
    they are added) and each other and off the ``keep_off`` discs: up to ``style.single_paddles``, drawn
    ``style.max_tries`` candidates at a time (the first that fits is kept), until a whole draw finds no room
    ``style.single_paddle_failures`` times in a row.

    Draws are made and checked :func:`_single_batch` at a time; the generator is then rewound to just after
    the last draw used, as if they had been made one at a time."""
    state, discs = rng.bit_generator.state, keep_off.tolist()
    singles: list[np.ndarray] = []
    failures = used = 0
    while len(singles) < style.single_paddles and failures < style.single_paddle_failures:
        if used % _SINGLE_BATCH == 0:
            begins, ends, fits = _single_batch(rng, style, placed)
            begins, ends = begins.tolist(), ends.tolist()
            recent: list[tuple[float, ...]] = []  # singles placed since the batch was checked
        begin, end, fit = begins[used % _SINGLE_BATCH], ends[used % _SINGLE_BATCH], fits[used % _SINGLE_BATCH]
        used += 1
        for index in np.flatnonzero(fit).tolist():
            paddle = _paddle(*begin[index], *end[index])
            if _blocked(paddle, recent, style.clearance) or _touches_disc(paddle, discs, style.paddle_length):
                continue
            singles.append(np.array([[begin[index], end[index]]]))
            placed.add(paddle)
            recent.append(paddle)
            failures = 0
            break
        else:
            failures += 1
    if used:  # rewind, then redraw (3 numbers per candidate) what the draws used took
        rng.bit_generator.state = state
        rng.random(used * 3 * style.max_tries)
    return singles


def _draw(
    canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_width: float, intensity: float, scale: int
):
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


def _draw_all(
    canvas: np.ndarray, p0: np.ndarray, p1: np.ndarray, half_width: float, intensity: float, scale: int
):
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
