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


def _grow(rng, style: PathfinderStyle, start, paddles: int, obstacles: np.ndarray, keep_off: np.ndarray):
    """A contour of ``paddles`` paddles from ``start`` (float (n, 2, 2)), or None if it gets stuck.

    ``obstacles`` (m, 2, 2) are other contours' paddles; ``keep_off`` (k, 3) are (x, y, radius)
    discs. Each paddle is drawn among ``max_tries`` candidate directions at once; when none
    fits, the previous paddle is redrawn (up to ``paddles`` times per contour).
    """
    low, high = style.padding + style.thickness, style.resolution - style.padding - style.thickness
    segments: list[np.ndarray] = []
    headings: list[float] = []
    backtracks = 0
    while len(segments) < paddles:
        if not segments:
            angles = rng.uniform(-math.pi, math.pi, size=style.max_tries)
            begins = np.broadcast_to(start, (len(angles), 2))
        else:
            angles = headings[-1] + _sample_turns(rng, style.continuity, style.max_tries)
            begins = segments[-1][1] + style.gap * _unit(angles)
        ends = begins + style.paddle_length * _unit(angles)
        valid = np.all((begins >= low) & (begins <= high) & (ends >= low) & (ends <= high), axis=1)
        blockers = np.concatenate([obstacles, np.array(segments[:-1]).reshape(-1, 2, 2)])
        if len(blockers):  # only paddles within reach of this step can block it
            center = start if not segments else segments[-1][1]
            reach = style.gap + style.paddle_length + style.clearance
            blockers = blockers[_point_segment_distance(center, blockers[:, 0], blockers[:, 1]) < reach]
        if len(blockers):
            near = segment_distances(begins, ends, blockers[:, 0], blockers[:, 1]).min(axis=1)
            valid &= near >= style.clearance
        if len(keep_off):
            near = _point_segment_distance(keep_off[None, :, :2], begins[:, None], ends[:, None])
            valid &= np.all(near >= keep_off[None, :, 2], axis=1)
        if valid.any():
            choice = int(np.argmax(valid))
            segments.append(np.stack([begins[choice], ends[choice]]))
            headings.append(float(angles[choice]))
        elif segments and backtracks < paddles:
            segments.pop()
            headings.pop()
            backtracks += 1
        else:
            return None
    return np.array(segments)


def _marker_guard(style: PathfinderStyle) -> float:
    """Distance a marker's center keeps from contours it does not sit on."""
    return style.marker_radius + style.clearance


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
    contour_a = _grow(
        rng, style, seed_a, style.contour_paddles, np.zeros((0, 2, 2)), np.array([[*seed_b, guard]])
    )
    if contour_a is None:
        return None
    keep_off_b = np.array([[*seed_a, guard], [*contour_a[-1, 1], guard]])
    contour_b = _grow(rng, style, seed_b, style.contour_paddles, contour_a, keep_off_b)
    if contour_b is None:
        return None
    contours = [contour_a, contour_b]
    ends = np.array(
        [[*seed_a, guard], [*seed_b, guard], [*contour_a[-1, 1], guard], [*contour_b[-1, 1], guard]]
    )
    distractor_paddles = max(1, style.contour_paddles // 3)
    for _ in range(style.distractor_budget // distractor_paddles):
        start = rng.uniform(margin, style.resolution - margin, size=2)
        grown = _grow(rng, style, start, distractor_paddles, np.concatenate(contours), ends)
        if grown is not None:
            contours.append(grown)
    owners = (0, 0) if label == 1 else (0, 1)
    markers = np.stack([seed_a, contours[owners[1]][-1, 1]])
    for center, owner in zip(markers, owners):  # a marker must not touch contours it does not carry
        for index, contour in enumerate(contours):
            if index != owner and _point_segment_distance(center, contour[:, 0], contour[:, 1]).min() < guard:
                return None
    if owners[0] != owners[1] and np.linalg.norm(markers[0] - markers[1]) < guard + style.marker_radius:
        return None  # nor the other target's marker
    contours += _single_paddles(rng, style, np.concatenate(contours), ends)
    return Scene(contours, markers, owners, label)


def _single_paddles(
    rng, style: PathfinderStyle, obstacles: np.ndarray, keep_off: np.ndarray
) -> list[np.ndarray]:
    """Single-paddle distractors (each a (1, 2, 2) contour) keeping ``clearance`` from ``obstacles`` and each
    other and off the ``keep_off`` discs: up to ``style.single_paddles``, drawn ``style.max_tries`` candidates
    at a time, until a whole draw finds no room ``style.single_paddle_failures`` times in a row."""
    margin = style.padding + style.thickness
    low, high = margin, style.resolution - margin
    placed: list[np.ndarray] = []
    failures = 0
    while len(placed) < style.single_paddles and failures < style.single_paddle_failures:
        begins = rng.uniform(low, high, size=(style.max_tries, 2))
        ends = begins + style.paddle_length * _unit(rng.uniform(-math.pi, math.pi, size=style.max_tries))
        valid = np.all((ends >= low) & (ends <= high), axis=1)
        blockers = np.concatenate([obstacles, np.array(placed).reshape(-1, 2, 2)])
        valid &= (
            segment_distances(begins, ends, blockers[:, 0], blockers[:, 1]).min(axis=1) >= style.clearance
        )
        near = _point_segment_distance(keep_off[None, :, :2], begins[:, None], ends[:, None])
        valid &= np.all(near >= keep_off[None, :, 2], axis=1)
        if not valid.any():
            failures += 1
            continue
        choice = int(np.argmax(valid))
        placed.append(np.stack([begins[choice], ends[choice]]))
        failures = 0
    return [paddle[None] for paddle in placed]


def render(scene: Scene, style: PathfinderStyle, scale: int) -> np.ndarray:
    """Rasterize ``scene`` with ``scale`` samples per pixel: float32 (R * scale, R * scale), 0 outside the
    drawing, ``style.contour_intensity`` on contours, 1 on markers."""
    size = style.resolution * scale
    canvas = np.zeros((size, size), dtype=np.float32)

    def draw(p0: np.ndarray, p1: np.ndarray, half_width: float, intensity: float) -> None:
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

    for contour in scene.contours:
        for begin, end in contour:
            draw(begin, end, style.thickness / 2, style.contour_intensity)
    for center in scene.markers:
        draw(center, center, style.marker_radius, 1.0)
    return canvas


def generate_image(rng: np.random.Generator, style: PathfinderStyle) -> tuple[np.ndarray, int, Scene]:
    """A Pathfinder image (uint8 (R, R), antialiased), its label (1 = markers joined) and its scene."""
    while (scene := generate_scene(rng, style)) is None:
        pass
    fine = render(scene, style, style.antialias)
    size = style.resolution
    image = fine.reshape(size, style.antialias, size, style.antialias).mean(axis=(1, 3))
    return np.round(image * 255).astype(np.uint8), scene.label, scene
