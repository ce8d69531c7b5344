"""How far a tracking has got and how long it will take: the time estimate and the line the Video tab shows.

A tracked frame's cost grows with the memory it attends to: SAM 2 keeps the last `memory_frames` frames (7 in
every released model) as memories, so the first frames of a pass are cheaper than the rest and an average of the
first ones says "3 s left" for a run of 80 s. The estimate fits cost = a + b × memories (least squares, never
negative) to the frames timed so far and sums it over the frames left, both passes included. Frames that were
prompted cost nothing (their masks are already there) and are not timed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MIN_SAMPLES = 2  # timed frames before an estimate is given ("estimating" until then)


@dataclass(frozen=True)
class TrackingPlan:
    """The frames a tracking processes: `passes` as (frames in the pass, prompted frames in it) in order."""

    passes: tuple[tuple[int, int], ...]

    @property
    def total(self) -> int:
        return sum(frames for frames, _ in self.passes)


@dataclass
class TrackingEstimate:
    """Seconds per tracked frame, learnt while tracking; `seconds_left` for the rest of the plan.

    memory_frames: the model's memory size (`num_maskmem`); a frame that is the k-th tracked one of its pass
    attends to min(k, memory_frames) memories (the prompted frame counts as one)."""

    plan: TrackingPlan
    memory_frames: int = 7
    samples: list[tuple[int, float]] = field(default_factory=list)  # (memories attended, seconds)

    def add(self, position: int, seconds: float) -> None:
        """The `position`-th tracked (not prompted) frame of its pass took `seconds`."""
        self.samples.append((self.memories(position), max(0.0, seconds)))

    def memories(self, position: int) -> int:
        return min(max(1, position), self.memory_frames)

    def seconds_per_frame(self, memories: int) -> float | None:
        """The fitted cost of a frame attending to `memories` memories; None until MIN_SAMPLES frames are timed."""
        if len(self.samples) < MIN_SAMPLES:
            return None
        xs = [float(m) for m, _ in self.samples]
        ys = [t for _, t in self.samples]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        spread = sum((x - mean_x) ** 2 for x in xs)
        slope = 0.0 if spread == 0 else sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
        slope = max(0.0, slope)
        intercept = max(0.0, mean_y - slope * mean_x)
        return intercept + slope * memories

    def seconds_left(self, pass_index: int, position: int) -> float | None:
        """Seconds for the frames after the `position`-th tracked frame of pass `pass_index` (0-based), to the end
        of the plan; None while unknown."""
        if self.seconds_per_frame(1) is None:
            return None
        left = 0.0
        for index, (frames, prompted) in enumerate(self.plan.passes):
            if index < pass_index:
                continue
            first = position + 1 if index == pass_index else 1
            for k in range(first, frames - prompted + 1):
                left += self.seconds_per_frame(self.memories(k)) or 0.0
        return left


def progress_note(done: int, total: int, frame: int, num_frames: int, reverse: bool, seconds_left: float | None) -> str:
    """The line shown while tracking: direction, frame (0-based, as the slider counts), frames done and the time
    left ("estimating" while unknown)."""
    if done >= total:
        estimate = "finishing"
    elif seconds_left is None:
        estimate = "estimating the time left"
    elif seconds_left < 90:
        estimate = f"about {seconds_left:.0f} s left"
    else:
        estimate = f"about {seconds_left / 60:.0f} min left"
    direction = "backward" if reverse else "forward"
    return (
        f"Tracking {direction}: frame {frame} (the slider's numbering, 0-{num_frames - 1}) · {done} of {total} "
        f"frames done · {estimate} · Cancel keeps what is tracked."
    )
