"""A video's timeline as a picture: one band per track, its smoothed expression probabilities over time
stacked in the band (each expression its colour), the track's ID, dominant expression and share of the
time on the left."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def segments(times: np.ndarray, step: float) -> list[slice]:
    """Runs of `times` without a gap longer than 2.5 steps: a band is not drawn where the face was not seen."""
    if len(times) == 0:
        return []
    breaks = np.flatnonzero(np.diff(times) > 2.5 * step) + 1
    edges = [0, *breaks.tolist(), len(times)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


MAX_BANDS = 40  # tracks drawn at most (255 bands took 63 s; the tracks CSV holds every track)


def banded(tracks: list[dict]) -> list[dict]:
    """The tracks a timeline draws: all, or the `MAX_BANDS` seen in the most frames, in order of appearance."""
    if len(tracks) <= MAX_BANDS:
        return tracks
    longest = sorted(range(len(tracks)), key=lambda k: -tracks[k]["frames"])[:MAX_BANDS]
    return [tracks[k] for k in sorted(longest)]


def plot_timeline(
    tracks: list[dict], names: list[str], png: Path, duration: float, title: str = "", metadata: dict | None = None
) -> Path:
    """Write the timeline of `tracks` (`video.summarise`'s) to `png`, one band per track (`MAX_BANDS` at most:
    the longest seen, the title says so); `duration`: the video's length in seconds (the x axis);
    `metadata`: the PNG's text fields (e.g. its Software)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(tracks) > MAX_BANDS:  # hundreds of bands take minutes and pass matplotlib's size limit
        drawn = banded(tracks)
        title = f"{title}  ({len(drawn)} of {len(tracks)} tracks: the longest seen)".strip()
        tracks = drawn
    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")(np.arange(len(names)))
    rows = max(1, len(tracks))
    figure, axes = plt.subplots(
        rows, 1, figsize=(11, 0.9 * rows + 1.4), sharex=True, squeeze=False, constrained_layout=True
    )
    for axis, track in zip(axes[:, 0], tracks):
        series = [s for s in track["series"] if "smoothed" in s]
        times = np.array([s["time_s"] for s in series])
        if len(times):
            step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
            values = np.array([[s["smoothed"][n] for n in names] for s in series]).T
            for part in segments(times, step):
                x = times[part] if part.stop - part.start > 1 else np.array([times[part][0], times[part][0] + step])
                y = values[:, part] if part.stop - part.start > 1 else np.repeat(values[:, part], 2, axis=1)
                axis.stackplot(x, y, colors=colours, linewidth=0)
        dominant = track["dominant"] or "-"
        share = track["shares"].get(track["dominant"], 0.0)
        axis.set_ylabel(
            f"#{track['track']}\n{dominant}\n{100 * share:.0f} %", rotation=0, ha="right", va="center", fontsize=9
        )
        axis.set(ylim=(0, 1), yticks=[], xlim=(0, max(duration, 1e-3)))
    if not tracks:
        axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours]
    figure.legend(handles, names, loc="outside upper center", ncols=min(len(names), 8), fontsize=8, frameon=False)
    if title:
        axes[0, 0].set_title(title, fontsize=10, loc="left")
    figure.savefig(png, dpi=100, metadata=metadata)
    plt.close(figure)
    return png
