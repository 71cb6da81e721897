"""Progressive-growing schedule: stage, fade-in weight and batch size as pure functions of images seen.

Stages 0 .. 2 * num_blocks - 2 alternate stable (even) and fade-in (odd); stage s trains
`(s + 1) // 2 + 1` blocks. Driving everything from the images-seen counter (not the optimizer step)
keeps the schedule identical across batch-size changes and checkpoint resumes.
"""

from collections.abc import Sequence

from gansynth.errors import GANSynthError


class ScheduleError(GANSynthError):
    """The schedule was given impossible lengths, batch sizes or a stage/image count out of range."""


class Schedule:
    """Magenta's schedule (facts section 4) with `stable_images` S and `transition_images` T per stage."""

    def __init__(
        self,
        num_blocks: int,
        stable_images: int,
        transition_images: int,
        total_images: int,
        batch_sizes: Sequence[int] | int,
    ) -> None:
        if num_blocks < 1:
            raise ScheduleError(f"Schedule: num_blocks must be >= 1, got {num_blocks}")
        if stable_images < 1 or transition_images < 1:
            raise ScheduleError(
                f"Schedule: stable_images and transition_images must be >= 1, got {stable_images}, {transition_images}"
            )
        sizes = [batch_sizes] if isinstance(batch_sizes, int) else [int(n) for n in batch_sizes]
        if not 1 <= len(sizes) <= num_blocks or min(sizes) < 1:
            raise ScheduleError(
                f"Schedule: batch_sizes must be 1 to {num_blocks} positive ints (one per resolution), got {batch_sizes}"
            )
        self.num_blocks = num_blocks
        self.stable_images = stable_images
        self.transition_images = transition_images
        self.total_images = total_images
        self.num_stages = 2 * num_blocks - 1
        # a shorter list is left-padded with its first entry, so it names the final resolutions
        self.batch_sizes = [sizes[0]] * (num_blocks - len(sizes)) + sizes
        last_start = self._natural_end(self.num_stages - 2) if self.num_stages > 1 else 0
        if total_images <= last_start:
            raise ScheduleError(
                f"Schedule: total_images={total_images} must exceed {last_start}, where the final "
                f"{num_blocks}-block stage starts; otherwise the full resolution is never trained"
            )

    def _natural_end(self, stage: int) -> int:
        return (stage // 2 + 1) * self.stable_images + ((stage + 1) // 2) * self.transition_images

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
        return self._natural_end(stage)

    def stage(self, images_seen: int) -> int:
        """Stage id at `images_seen`; counts at or past the total stay in the last stage."""
        self._check_images(images_seen)
        return next(
            (s for s in range(self.num_stages - 1) if images_seen < self._natural_end(s)), self.num_stages - 1
        )

    def progress(self, images_seen: int) -> float:
        """Magenta's progress p in [0, num_blocks - 1]: integer while stable, ramping linearly in fade-ins."""
        self._check_images(images_seen)
        cycle = self.stable_images + self.transition_images
        last_image = self.num_blocks * self.stable_images + (self.num_blocks - 1) * self.transition_images - 1
        capped = min(images_seen, last_image)
        return capped // cycle + max(0.0, (capped % cycle - self.stable_images) / self.transition_images)

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
            "stable_images": self.stable_images,
            "transition_images": self.transition_images,
            "total_images": self.total_images,
            "batch_sizes": list(self.batch_sizes),
        }
