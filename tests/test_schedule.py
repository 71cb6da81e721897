"""Progressive schedule with the paper's numbers: 7 blocks, 800k stable / 800k fade-in, 11M images, batch 8."""

import pytest

from gansynth.core.schedule import Schedule, ScheduleError

K = 1_000
M = 1_000_000
PAPER_ARGUMENTS = dict(
    num_blocks=7, stable_images=800 * K, transition_images=800 * K, total_images=11 * M, batch_sizes=[8]
)


@pytest.fixture
def paper() -> Schedule:
    return Schedule(**PAPER_ARGUMENTS)


def test_paper_has_13_stages(paper):
    assert paper.num_stages == 13


def test_stage_ends_follow_magenta_formula(paper):
    expected = [800 * K * (s + 1) for s in range(12)] + [11 * M]  # 0.8M, 1.6M, ..., 9.6M, then the total
    assert [paper.stage_end(s) for s in range(13)] == expected


@pytest.mark.parametrize(
    ("images", "stage", "blocks", "alpha", "progress"),
    [
        (0, 0, 1, 1.0, 0.0),
        (800 * K - 1, 0, 1, 1.0, 0.0),
        (800 * K, 1, 2, 0.0, 0.0),
        (1_200 * K, 1, 2, 0.5, 0.5),
        (1_600 * K - 8, 1, 2, 1.0 - 8 / (800 * K), 1.0 - 8 / (800 * K)),
        (1_600 * K, 2, 2, 1.0, 1.0),
        (2_400 * K, 3, 3, 0.0, 1.0),
        (2_600 * K, 3, 3, 0.25, 1.25),
        (5_600 * K, 7, 5, 0.0, 3.0),  # 32x256 (attention) starts fading in
        (8_800 * K, 11, 7, 0.0, 5.0),
        (9_200 * K, 11, 7, 0.5, 5.5),
        (9_600 * K, 12, 7, 1.0, 6.0),
        (10_400 * K, 12, 7, 1.0, 6.0),
        (11 * M, 12, 7, 1.0, 6.0),
        (20 * M, 12, 7, 1.0, 6.0),
    ],
)
def test_stage_alpha_and_progress_around_boundaries(paper, images, stage, blocks, alpha, progress):
    assert paper.stage(images) == stage
    assert paper.progress(images) == pytest.approx(progress, abs=1e-12)
    assert paper.blocks_and_alpha(images) == (blocks, pytest.approx(alpha, abs=1e-12))


def test_every_stage_start_and_last_image(paper):
    """The image at each boundary belongs to the new stage, the one before it to the old."""
    for stage in range(12):
        end = paper.stage_end(stage)
        assert (paper.stage(end - 1), paper.stage(end)) == (stage, stage + 1)


def test_alpha_ramps_linearly_through_every_fade_in(paper):
    for stage in range(1, 13, 2):
        start = paper.stage_end(stage - 1)
        alphas = [paper.blocks_and_alpha(start + k * 200 * K)[1] for k in range(4)]
        assert alphas == pytest.approx([0.0, 0.25, 0.5, 0.75])


def test_batch_size_single_entry_applies_to_every_stage(paper):
    assert [paper.batch_size(s) for s in range(13)] == [8] * 13


def test_short_batch_list_is_left_padded_and_indexed_by_resolution():
    schedule = Schedule(7, 10, 10, 200, batch_sizes=[16, 8])  # padded to [16] * 6 + [8]
    assert [schedule.batch_size(s) for s in range(13)] == [16] * 11 + [8, 8]


def test_per_stage_lengths_name_the_last_stages_and_stretch_only_their_fade():
    """``transition_images=[2, 8]`` on 4 blocks: fades of 2, 2 and 8 images; the top fade's alpha ramps
    over its own 8 images."""
    schedule = Schedule(4, stable_images=[4], transition_images=[2, 8], total_images=100, batch_sizes=1)
    assert [schedule.stage_end(s) for s in range(7)] == [4, 6, 10, 12, 16, 24, 100]
    assert [schedule.blocks_and_alpha(n) for n in (16, 18, 23, 24)] == [(4, 0.0), (4, 0.25), (4, 0.875), (4, 1.0)]
    assert schedule.progress(18) == pytest.approx(2.25)
    assert Schedule(**schedule.to_dict()).to_dict() == schedule.to_dict()


def test_to_dict_rebuilds_the_same_schedule(paper):
    rebuilt = Schedule(**paper.to_dict())
    assert rebuilt.to_dict() == paper.to_dict()
    assert [rebuilt.stage_end(s) for s in range(13)] == [paper.stage_end(s) for s in range(13)]


def test_single_block_schedule_is_one_stable_stage():
    schedule = Schedule(1, 100, 100, 500, 4)
    assert (schedule.num_stages, schedule.stage(450), schedule.blocks_and_alpha(450)) == (1, 0, (1, 1.0))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(num_blocks=0), "num_blocks"),
        (dict(stable_images=0), "stable_images"),
        (dict(transition_images=-1), "transition_images"),
        (dict(transition_images=[800 * K] * 7), "transition_images must be 1 to 6"),
        (dict(stable_images=[800 * K, 0]), "stable_images"),
        (dict(total_images=9_600 * K), "never trained"),
        (dict(batch_sizes=[8] * 8), "batch_sizes"),
        (dict(batch_sizes=[8, 0]), "batch_sizes"),
        (dict(batch_sizes=[]), "batch_sizes"),
    ],
)
def test_bad_arguments_are_rejected(arguments, message):
    with pytest.raises(ScheduleError, match=message):
        Schedule(**{**PAPER_ARGUMENTS, **arguments})


@pytest.mark.parametrize("stage", [-1, 13])
def test_stage_out_of_range_is_rejected(paper, stage):
    with pytest.raises(ScheduleError, match="stage must be in 0..12"):
        paper.batch_size(stage)


def test_negative_image_count_is_rejected(paper):
    with pytest.raises(ScheduleError, match="images_seen"):
        paper.stage(-1)
