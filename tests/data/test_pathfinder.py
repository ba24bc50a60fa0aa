"""Pathfinder: the label says whether one contour joins the two markers, in geometry and in pixels."""

from __future__ import annotations

import numpy as np
import pytest
from mamba_lm.data.lra.pathfinder import generate_image, render, segment_distances, style_for


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
