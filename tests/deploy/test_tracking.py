"""deploy/tracking.py: track IDs by overlap and the Hungarian assignment, and smoothing by half-life."""

import numpy as np
import pytest

from affect_keras.deploy.tracking import Tracker, box_iou, linear_assignment, smoothing_weight


def ids(tracker, time, boxes, outputs=None):
    return [track for track, _ in tracker.update(time, boxes, outputs)]


def test_iou_of_boxes():
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10])[0, 0] == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [[20, 20, 5, 5], [0, 0, 10, 10]]).tolist() == [[0.0, 1.0]]


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 7), (7, 4), (12, 12), (0, 3), (3, 0)])
def test_the_assignment_is_scipys(shape):
    """The least total cost of scipy's linear_sum_assignment, min(n, m) pairs, each row and column once, on
    random matrices and on matrices full of ties."""
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(shape[0] * 10 + shape[1])
    for cost in (rng.random(shape), rng.integers(0, 3, shape).astype(float)):
        rows, cols = linear_assignment(cost)
        want_rows, want_cols = linear_sum_assignment(cost)
        assert len(rows) == len(want_rows) == min(shape)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols) and list(rows) == sorted(rows)
        assert cost[rows, cols].sum() == pytest.approx(cost[want_rows, want_cols].sum())


def test_two_faces_that_cross_keep_their_ids():
    """A moves right, B left, their boxes overlapping by a third of their height as they pass; the faces
    come in a different order each frame (as a detector sorts them by size)."""
    tracker = Tracker(half_life=0)
    owner = {}
    for k in range(60):
        a, b = (10 + 6 * k, 0, 90, 90), (370 - 6 * k, 60, 90, 90)
        order = [a, b] if k % 2 else [b, a]
        for box, track in zip(order, ids(tracker, k / 25, order)):
            owner.setdefault(track, set()).add("A" if box is a else "B")
    assert sorted(map(sorted, owner.values())) == [["A"], ["B"]]


def test_a_missed_face_keeps_its_id_within_the_grace_then_gets_a_new_one():
    tracker = Tracker(half_life=0, grace=0.5)
    box = (100, 100, 80, 80)
    first = ids(tracker, 0.0, [box])
    ids(tracker, 0.2, [])  # missed for 0.4 s: within the grace
    assert ids(tracker, 0.4, [box]) == first
    for time in (0.6, 0.8, 1.0):
        ids(tracker, time, [])
    assert ids(tracker, 1.2, [box]) != first  # gone for 0.8 s: a new track


def test_the_grace_is_at_least_two_analysed_frames():
    tracker = Tracker(half_life=0, grace=0.1)
    box = (100, 100, 80, 80)
    first = ids(tracker, 0.0, [box])
    assert ids(tracker, 0.2, [box]) == first
    ids(tracker, 0.4, [])  # one analysed frame (0.2 s apart) missed: more than 0.1 s, fewer than 2 frames
    assert ids(tracker, 0.6, [box]) == first


def test_a_face_that_speeds_up_is_followed_by_its_velocity():
    """10 px a frame, then 30 with 40 px boxes: the box where it was overlaps the next by 0.14, under
    min_iou 0.3; moved on by the track's velocity, by 0.33 and more."""
    tracker = Tracker(half_life=0, min_iou=0.3)
    places = [10 * k for k in range(4)] + [30 + 30 * k for k in range(1, 10)]
    assert box_iou([places[4], 0, 40, 40], [places[5], 0, 40, 40])[0, 0] < 0.3
    tracks = {ids(tracker, k / 10, [(x, 0, 40, 40)])[0] for k, x in enumerate(places)}
    assert tracks == {1}


def test_smoothing_halves_the_old_output_after_the_half_life():
    tracker = Tracker(half_life=0.5)
    tracker.update(0.0, [(0, 0, 50, 50)], [{"expression": np.array([1.0, 0.0])}])
    ((_, smoothed),) = tracker.update(0.5, [(0, 0, 50, 50)], [{"expression": np.array([0.0, 1.0])}])
    assert smoothed["expression"] == pytest.approx([0.5, 0.5])


@pytest.mark.parametrize("fps", [5, 25, 30])
def test_smoothing_does_not_depend_on_the_frame_rate(fps):
    """A step from one expression to another just after 1 s: the smoothed value t seconds after the step is
    1 - 2^(-t / half_life) whatever the frame rate."""
    tracker = Tracker(half_life=0.4)
    for k in range(3 * fps + 1):
        time = k / fps
        new = np.array([0.0, 1.0]) if time > 1.0 else np.array([1.0, 0.0])
        ((_, smoothed),) = tracker.update(time, [(0, 0, 50, 50)], [{"expression": new}])
    assert smoothed["expression"][1] == pytest.approx(1 - 0.5 ** (2.0 / 0.4))


def test_no_smoothing_gives_the_raw_outputs():
    tracker = Tracker(half_life=0)
    for k, value in enumerate(([0.9, 0.1], [0.2, 0.8], [0.6, 0.4])):
        ((_, smoothed),) = tracker.update(k / 25, [(0, 0, 50, 50)], [{"expression": np.array(value)}])
        assert smoothed["expression"].tolist() == value
    assert smoothing_weight(1.0, 0.0) == 0.0


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="half_life"):
        Tracker(half_life=-1)
