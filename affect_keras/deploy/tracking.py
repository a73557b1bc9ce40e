"""Faces followed across a video's frames, and their outputs smoothed over time.

`Tracker.update` takes one analysed frame's faces (boxes and the model's outputs) and gives each a track:
an integer ID that stays with the same face from frame to frame. Matching is by overlap: each track's box
is moved on by the track's velocity to where it should be now, and faces and tracks are paired by the
Hungarian assignment on 1 - IoU (`linear_assignment`), pairs overlapping less than `min_iou` left apart. A
track missed for up to `grace` seconds keeps its ID; a face that comes back later, or a new face, starts a
new track. Two faces that cross keep theirs: a track's moved-on box overlaps its own face far more than the
other's.

Each track smooths its outputs (expression probabilities, valence and arousal) by an exponential moving
average with a half-life in seconds: an output t seconds old weighs 2^(-t / half_life) of the newest, so
the result does not depend on the frame rate or on how many frames are analysed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from affect_keras.data.faces import box_iou


def linear_assignment(cost) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the pairing of least total cost of an (n, m) matrix, min(n, m) pairs, rows in
    order: what scipy's `linear_sum_assignment` answers (the tests check it), by the Hungarian method with
    potentials, O(n^2 m). Written here because predict's runtime install has no scipy (143 MB on disk, a
    quarter of that install, for a few faces a frame)."""
    cost = np.asarray(cost, np.float64)
    flipped = cost.shape[0] > cost.shape[1]
    cost = cost.T if flipped else cost
    n, m = cost.shape
    u, v = np.zeros(n + 1), np.zeros(m + 1)
    owner = np.zeros(m + 1, int)  # owner[j]: the row (from 1) column j is paired with; 0: none
    way = np.zeros(m + 1, int)
    for row in range(1, n + 1):
        owner[0], column = row, 0
        least = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while owner[column]:  # grow the tree of alternating paths until a free column is reached
            used[column] = True
            current, free = owner[column], ~used
            reduced = cost[current - 1] - u[current] - v[1:]
            better = free[1:] & (reduced < least[1:])
            least[1:][better] = reduced[better]
            way[1:][better] = column
            candidates = np.where(free[1:], least[1:], np.inf)
            nearest = int(np.argmin(candidates)) + 1
            delta = candidates[nearest - 1]
            u[owner[used]] += delta
            v[used] -= delta
            least[free] -= delta
            column = nearest
        while column:  # flip the path
            previous = way[column]
            owner[column] = owner[previous]
            column = previous
    paired = np.flatnonzero(owner[1:])
    rows, columns = owner[1:][paired] - 1, paired
    if flipped:
        rows, columns = columns, rows
    order = np.argsort(rows)
    return rows[order], columns[order]


def smoothing_weight(seconds: float, half_life: float) -> float:
    """The weight the smoothed value keeps after `seconds` (the newest output gets the rest)."""
    return 0.0 if half_life <= 0 else float(0.5 ** (max(seconds, 0.0) / half_life))


@dataclass
class Track:
    """One face followed over time: where it was last seen, how it moves (pixels per second), and its
    smoothed outputs ({name: array})."""

    id: int
    box: np.ndarray
    seen: float  # time of the last detection, seconds
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    smoothed: dict[str, np.ndarray] = field(default_factory=dict)

    def box_at(self, time: float) -> np.ndarray:
        """Where the box should be at `time`, moving on at the track's velocity."""
        moved = self.box.copy()
        moved[:2] += self.velocity * (time - self.seen)
        return moved


class Tracker:
    """Track IDs for each analysed frame's faces, and their smoothed outputs.

    Args:
        half_life: seconds after which an output weighs half the newest in the smoothed value (0: no
            smoothing, the smoothed outputs are the raw ones).
        grace: seconds a track may go without its face and keep its ID (at least two analysed frames).
        min_iou: the least overlap between a track's moved-on box and a face for them to be paired.

    Examples:
        >>> tracker = Tracker(half_life=0.5)
        >>> for time, boxes, outputs in frames:  # outputs: [{"expression": probabilities}, ...]
        ...     for track, smoothed in tracker.update(time, boxes, outputs):
        ...         print(time, track, smoothed["expression"].argmax())
    """

    def __init__(self, half_life: float = 0.5, grace: float = 0.5, min_iou: float = 0.2):
        if half_life < 0 or grace < 0 or not 0 <= min_iou <= 1:
            raise ValueError("half_life and grace must be >= 0 and min_iou in [0, 1]")
        self.half_life, self.grace, self.min_iou = half_life, grace, min_iou
        self.tracks: list[Track] = []
        self._ids = itertools.count(1)
        self._last: float | None = None

    def update(
        self, time: float, boxes, outputs: list[dict[str, np.ndarray]] | None = None
    ) -> list[tuple[int, dict[str, np.ndarray]]]:
        """The faces of the frame at `time` seconds: per face, in the order given, (track ID, smoothed
        outputs)."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        outputs = outputs if outputs is not None else [{} for _ in range(len(boxes))]
        step = time - self._last if self._last is not None else 0.0
        self._last = time
        pairs: dict[int, Track] = {}
        if self.tracks and len(boxes):
            overlap = box_iou(np.stack([t.box_at(time) for t in self.tracks]), boxes)
            rows, cols = linear_assignment(1.0 - overlap)
            pairs = {int(c): self.tracks[r] for r, c in zip(rows, cols) if overlap[r, c] >= self.min_iou}
        results = []
        for k, box in enumerate(boxes):
            track = pairs.get(k)
            if track is None:
                track = Track(
                    next(self._ids),
                    box.copy(),
                    time,
                    smoothed={n: np.asarray(v, np.float64) for n, v in outputs[k].items()},
                )
                self.tracks.append(track)
            else:
                self._follow(track, time, box, outputs[k])
            results.append((track.id, {n: v.copy() for n, v in track.smoothed.items()}))
        grace = max(self.grace, 2 * step)  # at least two analysed frames
        self.tracks = [t for t in self.tracks if time - t.seen <= grace + 1e-9]
        return results

    def _follow(self, track: Track, time: float, box: np.ndarray, outputs: dict[str, np.ndarray]) -> None:
        elapsed = time - track.seen
        if elapsed > 0:  # the velocity: a running mean of the box's moves, pixels per second
            moved = (box[:2] - track.box[:2]) / elapsed
            track.velocity = moved if not track.velocity.any() else 0.5 * track.velocity + 0.5 * moved
        keep = smoothing_weight(elapsed, self.half_life)
        for name, value in outputs.items():
            value = np.asarray(value, np.float64)
            previous = track.smoothed.get(name)
            track.smoothed[name] = value if previous is None else keep * previous + (1 - keep) * value
        track.box, track.seen = box.copy(), time
