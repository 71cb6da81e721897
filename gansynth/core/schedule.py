"""Progressive-growing schedule: stage, fade-in weight and batch size as pure functions of images seen.

Stages 0 .. 2 * num_blocks - 2 alternate stable (even) and fade-in (odd); stage s trains
`(s + 1) // 2 + 1` blocks. Driving everything from the images-seen counter (not the optimizer step)
keeps the schedule identical across batch-size changes and checkpoint resumes.
"""

from collections.abc import Sequence

from gansynth.core.errors import GANSynthError


class ScheduleError(GANSynthError):
    """The schedule was given impossible lengths, batch sizes or a stage/image count out of range."""


def per_stage(name: str, value, count: int, kind: type = int) -> list:
    """One positive ``kind`` per resolution, fade-in or stage; a shorter list is left-padded with its first
    entry, so it names the final ones (``[16, 8]``: 8 for the last, 16 for all before)."""
    error = ScheduleError(f"{name} must be 1 to {count} positive {kind.__name__}s, got {value}")
    one = isinstance(value, kind) or (kind is float and isinstance(value, int))
    try:
        values = [kind(value)] if one else [kind(n) for n in value]
    except (TypeError, ValueError):  # a word, or a float where ints are counted
        raise error from None
    if not 1 <= len(values) <= count or min(values) <= 0:
        raise error
    return [values[0]] * (count - len(values)) + values


class Schedule:
    """Magenta's schedule (facts section 4): ``stable_images`` per resolution and ``transition_images`` per
    fade-in, each one int for all or a list naming the last ones (the top stage's fade can be longer)."""

    def __init__(
        self,
        num_blocks: int,
        stable_images: Sequence[int] | int,
        transition_images: Sequence[int] | int,
        total_images: int,
        batch_sizes: Sequence[int] | int,
    ) -> None:
        if num_blocks < 1:
            raise ScheduleError(f"Schedule: num_blocks must be >= 1, got {num_blocks}")
        self.num_blocks = num_blocks
        self.stable_images = per_stage("Schedule: stable_images", stable_images, num_blocks)
        self.transition_images = per_stage("Schedule: transition_images", transition_images, max(num_blocks - 1, 1))
        self.batch_sizes = per_stage("Schedule: batch_sizes", batch_sizes, num_blocks)
        self.total_images = total_images
        self.num_stages = 2 * num_blocks - 1
        lengths = [self.stable_images[s // 2] if s % 2 == 0 else self.transition_images[s // 2]
                   for s in range(self.num_stages - 1)]
        self._ends = [sum(lengths[: s + 1]) for s in range(len(lengths))]  # natural end of every stage but the last
        last_start = self._ends[-1] if self._ends else 0
        if total_images <= last_start:
            raise ScheduleError(
                f"Schedule: total_images={total_images} must exceed {last_start}, where the final "
                f"{num_blocks}-block stage starts; otherwise the full resolution is never trained"
            )

    def _check_stage(self, stage: int) -> None:
        if not 0 <= stage < self.num_stages:
            raise ScheduleError(f"Schedule: stage must be in 0..{self.num_stages - 1}, got {stage}")

    def _check_images(self, images_seen: int) -> None:
        if images_seen < 0:
            raise ScheduleError(f"Schedule: images_seen must be >= 0, got {images_seen}")

    def stage_end(self, stage: int) -> int:
        """Image count at which `stage` ends (exclusive); the last stage runs to `total_images`."""
        self._check_stage(stage)
        if stage == self.num_stages - 1:
            return self.total_images
        return self._ends[stage]

    def stage(self, images_seen: int) -> int:
        """Stage id at `images_seen`; counts at or past the total stay in the last stage."""
        self._check_images(images_seen)
        return next((s for s, end in enumerate(self._ends) if images_seen < end), self.num_stages - 1)

    def progress(self, images_seen: int) -> float:
        """Magenta's progress p in [0, num_blocks - 1]: integer while stable, ramping linearly in fade-ins."""
        stage = self.stage(images_seen)
        if stage % 2 == 0:
            return float(stage // 2)
        start = self._ends[stage - 1]
        return stage // 2 + (images_seen - start) / self.transition_images[stage // 2]

    def blocks_and_alpha(self, images_seen: int) -> tuple[int, float]:
        """(active blocks including the one fading in, weight of the newest block; 1.0 while stable)."""
        stage = self.stage(images_seen)
        blocks = (stage + 1) // 2 + 1
        if stage % 2 == 0:
            return blocks, 1.0
        alpha = self.progress(images_seen) - (blocks - 2)
        return blocks, min(1.0, max(0.0, alpha))

    def batch_size(self, stage: int) -> int:
        """Batch size of `stage`: one entry per resolution, a fade-in uses its new resolution's entry."""
        self._check_stage(stage)
        return self.batch_sizes[(stage + 1) // 2]

    def to_dict(self) -> dict:
        """Primitive constructor arguments (checkpoint-safe); `Schedule(**d)` rebuilds it."""
        return {
            "num_blocks": self.num_blocks,
            "stable_images": list(self.stable_images),
            "transition_images": list(self.transition_images),
            "total_images": self.total_images,
            "batch_sizes": list(self.batch_sizes),
        }
