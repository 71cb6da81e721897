"""Training data from a folder of audio files, checked up front and cached as spectrograms on disk.

This replaces the fork's reader, which read every entry of one folder with a 16-bit assumption, no
sample-rate check and no padding, parsed pitch from fixed name offsets, and held the whole set in
memory. Here a quick header-only scan lists every problem at once before training; each clip is
converted to the codec's rate and channels, padded or cropped, encoded once, and read back from a
memory-mapped `.npy` per file, so the dataset can be larger than RAM.
"""

from __future__ import annotations

import hashlib
import json
import os
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from gansynth.core.audio import AudioError, Header, load_clip, read_header, to_channels
from gansynth.core.errors import GANSynthError
from gansynth.core.files import save_npy
from gansynth.core.labels import LabelError, file_identity, instrument_of, label_files
from gansynth.core.pitch import PitchError, PitchVocab
from gansynth.core.seeds import DATA_ORDER, PAIRING, seeded_generator
from gansynth.core.spectral import CodecError, SpecgramCodec

AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".aif", ".aiff", ".ogg"})
TOO_LONG_MODES = ("reject", "crop")
LABEL_KEYS = frozenset({"source", "csv_path", "pattern"})
CACHE_FORMAT = 1  # bump when the cached image layout changes
ENCODE_BATCH = 16
NORMALIZER_KEYS = ("norm_scale", "norm_shift")  # do not change the raw images, so not part of the cache key


class DatasetError(GANSynthError):
    """A data folder that cannot be trained on; the message lists every bad file and why."""

    @classmethod
    def listing(cls, headline: str, problems: Mapping[Path, list[str]], root: Path) -> DatasetError:
        """One line for one bad file; for several, the headline and then one line per file."""
        entries = [f"{_shown(path, root)}: {'; '.join(reasons)}" for path, reasons in problems.items()]
        if len(entries) == 1:
            return cls(f"{headline}: {entries[0]}")
        return cls("\n".join([f"{headline} ({len(entries)} files):", *(f"  {entry}" for entry in entries)]))


def _shown(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


@dataclass
class ScanReport:
    """What the pre-flight scan found: the usable files with their pitches, and what was skipped."""

    root: Path
    vocab: PitchVocab
    files: list[Path] = field(default_factory=list)
    pitches: list[int] = field(default_factory=list)  # MIDI, one per file
    durations: list[float] = field(default_factory=list)  # seconds, one per file
    sample_rates: Counter = field(default_factory=Counter)
    channel_counts: Counter = field(default_factory=Counter)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    pairs: InstrumentPairs | None = None  # with instrument_pairs

    @property
    def skipped_count(self) -> int:
        return len(self.skipped)

    @property
    def skip_reasons(self) -> Counter:
        return Counter(reason for _, reason in self.skipped)

    @property
    def pitch_histogram(self) -> Counter:
        return Counter(self.pitches)

    @property
    def pitch_counts(self) -> list[int]:
        """Files per vocabulary index (index = MIDI - vocab.low)."""
        histogram = self.pitch_histogram
        return [histogram.get(self.vocab.midi(i), 0) for i in range(self.vocab.size)]

    def fingerprint(self) -> str:
        """SHA-256 of the usable files' paths (relative to the root) and bytes: two renders of one dataset
        that differ anywhere get different fingerprints, so results can say which render they scored."""
        digest = hashlib.sha256()
        for path in self.files:
            digest.update(path.relative_to(self.root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
        return digest.hexdigest()

    def summary(self) -> str:
        lines = [f"{self.root}: {len(self.files)} usable audio files, {self.skipped_count} skipped"]
        lines += [f"  skipped {count}: {reason}" for reason, count in sorted(self.skip_reasons.items())]
        if self.files:
            rates = ", ".join(f"{rate} Hz x {n}" for rate, n in sorted(self.sample_rates.items()))
            channels = ", ".join(f"{ch} ch x {n}" for ch, n in sorted(self.channel_counts.items()))
            histogram = self.pitch_histogram
            common, common_count = histogram.most_common(1)[0]
            lines += [
                f"  sample rates: {rates}",
                f"  channels: {channels}",
                f"  durations: {min(self.durations):.3f} to {max(self.durations):.3f} s",
                f"  pitches: MIDI {min(histogram)} to {max(histogram)}, {len(histogram)} distinct "
                f"(most common {common} x {common_count}; vocabulary {self.vocab.low}..{self.vocab.high})",
            ]
        return "\n".join(lines)


class InstrumentPairs:
    """Which notes may partner a note: its instrument's notes (NSynth-style names) at other pitches.

    Each instrument's notes are kept sorted by pitch, so a note's own pitch is one run of that list
    and a uniform partner is a uniform index into the list with that run cut out (memory O(files))."""

    def __init__(self, files: list[Path], pitches: list[int], root: Path):
        problems, groups = {}, {}
        for index, path in enumerate(files):
            try:
                groups.setdefault(instrument_of(path), []).append(index)
            except LabelError:
                problems[path] = ["data.instrument_pairs needs the instrument in the name (NAME_PPP-VVV)"]
        self.names = list(groups)  # by instrument index
        self.members, self.own_pitch = [], [(0, 0, 0)] * len(files)  # own_pitch: (group, first, end)
        for instrument, indices in groups.items():
            indices.sort(key=lambda i: pitches[i])
            group = len(self.members)
            self.members.append(indices)
            sorted_pitches = [pitches[i] for i in indices]
            for i in indices:
                first, end = bisect_left(sorted_pitches, pitches[i]), bisect_right(sorted_pitches, pitches[i])
                if end - first == len(indices):
                    problems[files[i]] = [f"data.instrument_pairs: instrument {instrument!r} has no note at "
                                          "another pitch"]
                self.own_pitch[i] = (group, first, end)
        if problems:
            ordered = {path: problems[path] for path in files if path in problems}
            raise DatasetError.listing(f"{root}: notes that cannot be paired (to train without pairs: "
                                       "data.instrument_pairs=false model.pair_critic_harmonics=0 "
                                       "model.instrument_projection=false)",
                                       ordered, root)

    def instrument(self, item: int) -> int:
        """The index of ``item``'s instrument (0 .. len(members) - 1, in the order the files were listed)."""
        return self.own_pitch[item][0]

    @property
    def counts(self) -> list[int]:
        """Notes per instrument, by instrument index."""
        return [len(indices) for indices in self.members]

    def partner(self, item: int, u: float) -> int:
        """The partner of ``item`` at ``u`` in [0, 1): uniform over its instrument's other pitches."""
        group, first, end = self.own_pitch[item]
        members = self.members[group]
        k = int(u * (len(members) - (end - first)))
        return members[k if k < first else k + end - first]


class CachedSpectrograms(Dataset):
    """(raw image float32 [C, T, F], pitch index long, instrument index long) read from memory-mapped
    `.npy` files; the instrument index is -1 where the names do not carry instruments (no pairs)."""

    def __init__(self, images: list[Path], pitch_indices: list[int], instruments: list[int] | None = None):
        self.images = images
        self.pitch_indices = pitch_indices
        self.instruments = instruments or [-1] * len(images)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image = np.load(self.images[i], mmap_mode="r")  # [C, T, F], read-only map
        return (torch.from_numpy(np.array(image, dtype=np.float32)), torch.tensor(self.pitch_indices[i]),
                torch.tensor(self.instruments[i]))


class StreamBatchSampler(Sampler[list[int]]):
    """One rank's batches from an endless stream of the dataset's items, reshuffled every pass.

    A position in the stream counts the images all ranks have taken. The batch at position p has
    ``b = batch_size_at(p)`` items per rank; rank r of w takes the items at positions p + r·b up to
    p + (r+1)·b - 1, so the ranks' shards are disjoint, and the next batch starts at p + w·b. Pass k
    over the data is a permutation seeded by (seed, k). A batch therefore depends on nothing but
    the seed, the rank, the world size and the image count it starts at: a loader built at any
    count (a new epoch, a resumed run) continues the stream exactly, and the batch size may change
    at any count (a stage boundary). An epoch is one pass's worth of batches at the first size.

    With ``pairs``, the item at every odd position is replaced by a partner of the one before it (the
    same instrument at another pitch), drawn from a generator seeded by (seed, batch start).
    """

    def __init__(self, size: int, start: int, batch_size_at: Callable[[int], int], seed: int = 0,
                 rank: int = 0, world_size: int = 1, pairs: InstrumentPairs | None = None):
        self.size, self.start, self.batch_size_at = size, start, batch_size_at
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.pairs = pairs
        self._order: tuple[int, torch.Tensor] | None = None  # (pass, permutation)

    def __len__(self) -> int:
        return max(1, self.size // (self.batch_size_at(self.start) * self.world_size))

    def __iter__(self) -> Iterator[list[int]]:
        position = self.start
        for _ in range(len(self)):
            size = self.batch_size_at(position)
            first = position + self.rank * size
            items = [self._item(q) for q in range(first, first + size)]
            if self.pairs is not None:
                items[1::2] = self._partners_of(items[0::2][: size // 2], first)
            yield items
            position += size * self.world_size

    def _partners_of(self, items: list[int], first: int) -> list[int]:
        choice = seeded_generator("cpu", self.seed, PAIRING, first)
        picks = torch.rand(len(items), generator=choice).tolist()
        return [self.pairs.partner(item, u) for item, u in zip(items, picks)]

    def _item(self, position: int) -> int:
        k, offset = divmod(position, self.size)
        if self._order is None or self._order[0] != k:
            self._order = (k, torch.randperm(self.size, generator=seeded_generator("cpu", self.seed, DATA_ORDER, k)))
        return int(self._order[1][offset])


class AudioFolderDataModule(pl.LightningDataModule):
    """A folder of notes (searched recursively) as pitch-labelled spectrogram batches.

    Lightning calls prepare_data() once per node (scan, then encode what the cache lacks) and
    setup() on every process (index the cache). Batches are raw-unit images; the model normalises.
    Each rank's batches come from a seeded stream (``StreamBatchSampler``): the trainer must not add
    a distributed sampler (``use_distributed_sampler=False``).
    """

    def __init__(
        self,
        path: str,
        codec: dict,
        labels: dict | None = None,
        pitch_low: int = 24,
        pitch_high: int = 84,
        too_long: str = "reject",
        downmix: bool = False,
        cache_dir: str | None = None,
        batch_size: int = 8,
        num_workers: int = 0,
        fit_normalizer: bool = False,
        instrument_pairs: bool = False,
        seed: int = 0,
    ):
        super().__init__()
        self.path = Path(path).expanduser().absolute()
        self.labels = dict(labels or {"source": "nsynth"})
        unknown = set(self.labels) - LABEL_KEYS
        if unknown:
            raise DatasetError(f"labels: unknown keys {sorted(unknown)}; expected {sorted(LABEL_KEYS)}")
        if too_long not in TOO_LONG_MODES:
            raise DatasetError(f"too_long={too_long!r} must be one of {TOO_LONG_MODES}")
        if num_workers < 0:
            raise DatasetError(f"num_workers={num_workers} must be >= 0")
        self.pitch_low, self.pitch_high = pitch_low, pitch_high
        try:
            self.vocab = PitchVocab(pitch_low, pitch_high)
            self.encoder = SpecgramCodec.from_dict(dict(codec))  # checks the geometry before any file is read
        except (PitchError, CodecError) as err:
            raise DatasetError(f"{self.path}: bad data settings: {err}") from err
        self.too_long = too_long
        self.downmix = downmix
        self.cache_root = Path(cache_dir).expanduser().absolute() if cache_dir else self.path / ".gansynth_cache"
        self.num_workers = num_workers
        self.fit_normalizer = fit_normalizer
        self.instrument_pairs = instrument_pairs
        self.seed = seed
        self.set_batch_size(batch_size)
        self._position: Callable[[], int] | None = None  # set by follow(); None pickles (ddp_spawn)
        self._batch_size_at: Callable[[int], int] | None = None
        self._codec: SpecgramCodec | None = None
        self._report: ScanReport | None = None
        self._dataset: CachedSpectrograms | None = None

    # ----------------------------------------------------------------- public API
    def set_batch_size(self, batch_size: int) -> None:
        """Takes effect at the next train_dataloader() call, unless follow() set a schedule."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise DatasetError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size

    def follow(self, position: Callable[[], int], batch_size_at: Callable[[int], int]) -> None:
        """Start each train_dataloader() at ``position()`` images of the stream (the model's image
        count), with ``batch_size_at(images)`` items per rank (its schedule); by default every
        loader starts at 0 with ``batch_size``."""
        self._position, self._batch_size_at = position, batch_size_at

    @property
    def codec(self) -> SpecgramCodec:
        """The codec for the model; with fit_normalizer, its normaliser is fitted to the cached images
        (this builds the cache first if needed)."""
        if self._codec is None:
            self._codec = self.encoder
            if self.fit_normalizer:
                self.prepare_data()
                self._codec = self.encoder.with_fitted_normalizer(self._cached_extremes())
        return self._codec

    @property
    def pitch_counts(self) -> list[int]:
        return self.scan().pitch_counts

    @property
    def instrument_counts(self) -> list[int]:
        """Notes per instrument with ``instrument_pairs`` (the batches' instrument indices); [] without."""
        pairs = self.scan().pairs
        return pairs.counts if pairs else []

    @property
    def instrument_names(self) -> list[str]:
        """The instruments' names (from the file names) by instrument index with ``instrument_pairs``; [] without."""
        pairs = self.scan().pairs
        return pairs.names if pairs else []

    @property
    def cache_folder(self) -> Path:
        """One subfolder per codec geometry, clip handling and downmix choice."""
        geometry = {k: v for k, v in self.encoder.to_dict().items() if k not in NORMALIZER_KEYS}
        key = {"format": CACHE_FORMAT, "codec": geometry, "too_long": self.too_long, "downmix": self.downmix}
        digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()
        return self.cache_root / digest[:16]

    def scan(self) -> ScanReport:
        """Headers, names and labels of every file; raises DatasetError listing every bad file."""
        if self._report is None:
            self._report = self._scan()
        return self._report

    def prepare_data(self) -> None:
        """Encode every file the cache lacks; raises DatasetError listing files that failed to load."""
        report = self.scan()
        todo = [(f, c) for f, c in zip(report.files, self._cache_paths(report)) if not c.exists()]
        if not todo:
            return
        self.cache_folder.mkdir(parents=True, exist_ok=True)
        problems: dict[Path, list[str]] = {}
        quiet = len(todo) < 2 * ENCODE_BATCH
        with tqdm(total=len(todo), desc="encoding spectrograms", unit="file", disable=quiet) as bar:
            for start in range(0, len(todo), ENCODE_BATCH):
                batch = todo[start : start + ENCODE_BATCH]
                clips, targets = [], []
                for source, target in batch:
                    try:
                        clips.append(self._load_fixed_length(source))  # [ch, n]
                        targets.append(target)
                    except AudioError as err:
                        problems[source] = [str(err).removeprefix(f"{source}: ")]
                if clips:
                    with torch.inference_mode():
                        images = self.encoder.encode(torch.from_numpy(np.stack(clips)))  # [B, C, T, F]
                    for image, target in zip(images.numpy(), targets):
                        save_npy(target, image.astype(np.float32, copy=False))
                bar.update(len(batch))
        if problems:
            raise DatasetError.listing(f"{self.path}: cannot load some audio files", problems, self.path)

    def setup(self, stage: str | None = None) -> None:
        report = self.scan()
        images = self._cache_paths(report)
        missing = sum(not image.exists() for image in images)
        if missing:
            raise DatasetError(f"{self.cache_folder}: {missing} of {len(images)} spectrograms are not cached; "
                               "run prepare_data() first")
        instruments = [report.pairs.instrument(i) for i in range(len(images))] if report.pairs else None
        self._dataset = CachedSpectrograms(images, [self.vocab.index(p) for p in report.pitches], instruments)

    def train_dataloader(self) -> DataLoader:
        """This rank's loader from the stream position the model has reached (see follow())."""
        if self._dataset is None:
            self.setup("fit")
        fixed = self.batch_size
        batch_size_at = self._batch_size_at or (lambda images: fixed)
        start = self._position() if self._position else 0
        batch_size = batch_size_at(start)
        if len(self._dataset) < batch_size:
            raise DatasetError(
                f"{self.path}: {len(self._dataset)} usable files cannot fill one batch of {batch_size}"
            )
        trainer = self.trainer
        rank, world_size = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        sampler = StreamBatchSampler(len(self._dataset), start, batch_size_at, self.seed, rank, world_size,
                                     self.scan().pairs)
        return DataLoader(self._dataset, batch_sampler=sampler, num_workers=self.num_workers)

    # ----------------------------------------------------------------- scanning
    def _scan(self) -> ScanReport:
        if not self.path.is_dir():
            raise DatasetError(f"{self.path}: data folder does not exist or is not a folder")
        report = ScanReport(root=self.path, vocab=self.vocab)
        candidates = self._list_audio(report)
        problems: dict[Path, list[str]] = {}
        headers: dict[Path, Header] = {}
        for path in candidates:
            reasons = self._header_problems(path, headers)
            if reasons:
                problems[path] = reasons
        try:
            estimates = self.cache_root / "pitch_estimates.json"
            labels = label_files(list(headers), root=self.path, estimate_cache=estimates, **self.labels)
        except LabelError as err:
            raise DatasetError(f"{self.path}: {err}") from err
        for path, header in headers.items():
            label = labels[path]
            if isinstance(label, str):
                problems.setdefault(path, []).append(f"no pitch label: {label}")
            elif not self.vocab.contains(label):
                report.skipped.append((path, f"pitch outside vocabulary {self.vocab.low}..{self.vocab.high}"))
            elif path not in problems:
                report.files.append(path)
                report.pitches.append(label)
                report.durations.append(header.frames / header.sample_rate)
                report.sample_rates[header.sample_rate] += 1
                report.channel_counts[header.channels] += 1
        if problems:
            ordered = {p: problems[p] for p in candidates if p in problems}
            raise DatasetError.listing(f"{self.path}: bad audio files", ordered, self.path)
        if not report.files:
            skipped = ", ".join(f"{count} {reason}" for reason, count in sorted(report.skip_reasons.items()))
            raise DatasetError(f"{self.path}: no usable audio files" + (f" (skipped: {skipped})" if skipped else ""))
        if self.instrument_pairs:
            report.pairs = InstrumentPairs(report.files, report.pitches, self.path)
        return report

    def _list_audio(self, report: ScanReport) -> list[Path]:
        """Audio files under the folder in a stable order; other files are counted as skipped."""
        found = []
        for folder, subfolders, names in os.walk(self.path):
            folder = Path(folder)
            subfolders[:] = sorted(d for d in subfolders if folder / d != self.cache_root)
            for name in sorted(names):
                path = folder / name
                if name.startswith("._"):
                    report.skipped.append((path, "macOS resource-fork file"))
                elif path.suffix.lower() not in AUDIO_EXTENSIONS:
                    report.skipped.append((path, "not an audio file"))
                else:
                    found.append(path)
        return found

    def _header_problems(self, path: Path, headers: dict[Path, Header]) -> list[str]:
        """Checks that decode no audio (truncation included, see read_header); the header of a
        readable, complete file is recorded in headers."""
        try:
            header = headers[path] = read_header(path)
        except AudioError as err:
            return [str(err).removeprefix(f"{path}: ")]
        if header.frames <= 0:
            return ["contains no samples"]
        reasons = []
        try:
            to_channels(np.zeros((header.channels, 1), np.float32), self.encoder.audio_channels, self.downmix)
        except AudioError as err:
            reasons.append(str(err))
        rate, ceiling = self.encoder.sample_rate, self.encoder.n_samples
        resampled = round(header.frames * rate / header.sample_rate)
        if self.too_long == "reject" and resampled > ceiling:
            reasons.append(
                f"too long: {header.frames / header.sample_rate:.3f} s ({resampled} samples at {rate} Hz) "
                f"exceeds the clip length {ceiling / rate:.3f} s ({ceiling} samples); "
                "shorten it or set too_long=crop"
            )
        return reasons

    # ----------------------------------------------------------------- cache
    def _cache_paths(self, report: ScanReport) -> list[Path]:
        folder = self.cache_folder
        return [folder / f"{file_identity(path)}.npy" for path in report.files]

    def _load_fixed_length(self, path: Path) -> np.ndarray:
        """[ch, n_samples]: converted, then zero-padded at the end or cropped."""
        clip = load_clip(path, self.encoder.sample_rate, self.encoder.audio_channels, downmix=self.downmix)
        n = self.encoder.n_samples
        if clip.shape[1] >= n:
            return np.ascontiguousarray(clip[:, :n])
        return np.pad(clip, ((0, 0), (0, n - clip.shape[1])))

    def _cached_extremes(self) -> torch.Tensor:
        """[2, C, T, F]: the element-wise min and max over every cached image.

        The fitted normaliser depends only on per-channel minima and maxima, so these two images
        fit it exactly as the whole set would, while holding one image in memory at a time.
        """
        images = iter(self._cache_paths(self.scan()))
        low = np.load(next(images))
        high = low.copy()
        for path in images:
            image = np.load(path, mmap_mode="r")
            np.minimum(low, image, out=low)
            np.maximum(high, image, out=high)
        return torch.from_numpy(np.stack([low, high]))
