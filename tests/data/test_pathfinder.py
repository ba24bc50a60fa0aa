"""Pathfinder: the label says whether one contour joins the two markers, in geometry and in pixels."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from mamba_lm.data.lra.pathfinder import (
    _blocked,
    _draw,
    _paddle,
    _point_segment_distance,
    _too_close,
    _too_close_pairs,
    _touches_disc,
    generate_image,
    render,
    segment_distances,
    style_for,
)


def components(mask: np.ndarray) -> np.ndarray:
    """4-connected component labels of a boolean image (0 = background), by union-find."""
    parent = np.arange(mask.size)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    height, width = mask.shape
    flat = mask.ravel()
    for y in range(height):
        for x in range(width):
            i = y * width + x
            if not flat[i]:
                continue
            for j in ((i - 1) if x and flat[i - 1] else None, (i - width) if y and flat[i - width] else None):
                if j is not None:
                    parent[find(i)] = find(j)
    return np.array([find(i) + 1 if flat[i] else 0 for i in range(mask.size)]).reshape(mask.shape)


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    out = mask.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius:
                out |= np.roll(np.roll(mask, dy, 0), dx, 1)
    return out


def joined_geometrically(scene, style) -> bool:
    """Paddles within the in-contour gap are linked; markers link to paddles they touch."""
    paddles = np.concatenate(scene.contours)
    linked = segment_distances(paddles[:, 0], paddles[:, 1], paddles[:, 0], paddles[:, 1]) <= style.gap + 1e-6
    reach = [
        set(
            np.flatnonzero(
                segment_distances(m[None], m[None], paddles[:, 0], paddles[:, 1])[0] <= style.marker_radius
            )
        )
        for m in scene.markers
    ]
    frontier, seen = list(reach[0]), set(reach[0])
    while frontier:
        for neighbour in np.flatnonzero(linked[frontier.pop()]):
            if neighbour not in seen:
                seen.add(neighbour)
                frontier.append(neighbour)
    return bool(seen & reach[1])


@pytest.mark.parametrize("resolution,difficulty,count", [(32, "hard", 12), (32, "easy", 8), (128, "hard", 2)])
def test_labels_match_connectivity(resolution, difficulty, count):
    style = style_for(resolution, difficulty)
    labels = []
    for index in range(count):
        image, label, scene = generate_image(np.random.default_rng([5, index]), style)
        labels.append(label)
        assert image.shape == (resolution, resolution) and image.dtype == np.uint8
        assert len(scene.contours[0]) == len(scene.contours[1]) == style.contour_paddles
        for i, first in enumerate(scene.contours):  # different contours never come closer than the clearance
            for second in scene.contours[i + 1 :]:
                gaps = segment_distances(first[:, 0], first[:, 1], second[:, 0], second[:, 1])
                assert gaps.min() >= style.clearance - 1e-9
        assert joined_geometrically(scene, style) == bool(label)
        if resolution == 32:  # pixels: bridge the in-contour gaps, never the clearance between contours
            scale = 8
            fine = render(scene, style, scale) > 0
            joined = components(dilate(fine, int(np.ceil(style.gap * scale / 2)) + 1))
            ends = [joined[int(y * scale), int(x * scale)] for x, y in scene.markers]
            assert min(ends) > 0 and (ends[0] == ends[1]) == bool(label)
        assert image.max() == 255  # the markers are drawn at full intensity
    assert 0 < sum(labels) < count


def test_generation_is_reproducible():
    style = style_for(32, "intermediate")
    first, label, _ = generate_image(np.random.default_rng([0, 3]), style)
    second, label2, _ = generate_image(np.random.default_rng([0, 3]), style)
    assert np.array_equal(first, second) and label == label2
    assert not np.array_equal(first, generate_image(np.random.default_rng([0, 4]), style)[0])


def test_segment_distances():
    p0, p1 = np.array([[0.0, 0.0]]), np.array([[2.0, 0.0]])
    q0, q1 = np.array([[1.0, -1.0], [3.0, 1.0], [0.0, 2.0]]), np.array([[1.0, 1.0], [4.0, 1.0], [2.0, 2.0]])
    assert np.allclose(segment_distances(p0, p1, q0, q1), [[0.0, np.sqrt(2), 2.0]])


def test_lra_generator_settings_single_paddles_and_contrast():
    """LRA's snakes2 settings: single-paddle distractors fill the free space (within snakes2's budget),
    contours at the snake contrast (0.9 at 128 px: below full intensity), markers at full intensity."""
    small, large = style_for(32, "hard"), style_for(128, "hard")
    assert small.single_paddles == 708 and small.antialias == 2 and small.contour_intensity == 1.0
    image, _, scene = generate_image(np.random.default_rng([7, 0]), small)
    singles = [contour for contour in scene.contours if len(contour) == 1]
    assert len(singles) >= 5  # the free space of a 32 x 32 image holds a few dozen at most
    paddles = np.concatenate(scene.contours)
    for single in singles:  # each keeps the clearance from every other paddle
        others = np.delete(paddles, np.flatnonzero((paddles == single[0]).all(axis=(1, 2))), axis=0)
        assert (
            segment_distances(single[:, 0], single[:, 1], others[:, 0], others[:, 1]).min()
            >= small.clearance - 1e-9
        )
    assert large.contour_intensity == 0.9
    fine = render(generate_image(np.random.default_rng([7, 1]), large)[2], large, 1)
    levels = np.float32([0.0, 0.9, 1.0])
    assert np.isin(fine, levels).all() and (fine == levels[1]).any() and (fine == 1.0).any()


def test_scalar_and_pairwise_clearance_tests_agree_with_segment_distances():
    """The clearance tests that generation uses decide exactly as segment_distances and
    _point_segment_distance: random paddles, crossing, touching, collinear and zero-length ones, and
    distances at the threshold itself."""
    rng = np.random.default_rng(3)
    p0 = rng.uniform(0, 8, (400, 2))
    p1 = p0 + 2 * np.stack([np.cos(a := rng.uniform(-np.pi, np.pi, 400)), np.sin(a)], -1)
    q0, q1 = rng.uniform(0, 8, (400, 2)), rng.uniform(0, 8, (400, 2))
    special = np.array(
        [
            [[0, 0], [2, 0], [1, -1], [1, 1]],  # crossing
            [[0, 0], [2, 0], [2, 0], [4, 0]],  # touching end to end
            [[0, 0], [2, 0], [4, 0], [6, 0]],  # collinear, exactly the clearance apart
            [[0, 0], [2, 0], [0, 2], [2, 2]],  # parallel, exactly the clearance apart
            [[1, 1], [1, 1], [3, 1], [5, 1]],  # a zero-length segment
            [[0, 0], [0, 2], [2, 1], [5, 1]],  # a T, exactly the clearance apart
        ],
        dtype=float,
    )
    p0, p1 = np.concatenate([p0, special[:, 0]]), np.concatenate([p1, special[:, 1]])
    q0, q1 = np.concatenate([q0, special[:, 2]]), np.concatenate([q1, special[:, 3]])
    for clearance in (2.0, 1.5):
        expected = np.diag(segment_distances(p0, p1, q0, q1)) < clearance
        pairs = _too_close_pairs(np.concatenate([p0, p1], 1), np.concatenate([q0, q1], 1), clearance)
        paddles = [(_paddle(*a, *b), _paddle(*c, *d)) for a, b, c, d in zip(p0, p1, q0, q1)]
        scalar = [_too_close(p, q, clearance) for p, q in paddles]
        culled = [_blocked(p, [q], clearance) for p, q in paddles]  # skipping pairs whose boxes are far apart
        assert np.array_equal(pairs, expected) and scalar == culled == expected.tolist()
        assert expected.any() and not expected.all()
    discs = [[2.0, 0.0, 1.5], [1.0, 3.0, 2.0]]
    expected = (
        _point_segment_distance(np.array(discs)[None, :, :2], p0[:, None], p1[:, None]) < [1.5, 2.0]
    ).any(1)
    assert [_touches_disc(_paddle(*a, *b), discs, 5.0) for a, b in zip(p0, p1)] == expected.tolist()


def test_render_draws_as_segment_by_segment():
    """render (all segments at once) sets the samples that drawing one segment at a time sets, also where a
    sample lies exactly half a width from a paddle (there it draws that paddle one segment at a time)."""
    style = style_for(32, "hard")
    scenes = [generate_image(np.random.default_rng([2, index]), style)[2] for index in range(3)]
    edge = replace(scenes[0], contours=[*scenes[0].contours, np.array([[[10.0, 1.0], [12.0, 1.0]]])])
    for scene in [*scenes, edge]:  # edge: at scale 2, samples at y = 0.75 and 1.25, half a width away
        for scale in (1, 2, 8):
            expected = np.zeros((32 * scale, 32 * scale), dtype=np.float32)
            for begin, end in np.concatenate(scene.contours):
                _draw(expected, begin, end, style.thickness / 2, style.contour_intensity, scale)
            for center in scene.markers:
                _draw(expected, center, center, style.marker_radius, 1.0, scale)
            assert np.array_equal(render(scene, style, scale), expected)
