"""Configs of the Long Range Arena tasks (``kind: lra_*``), every field documented where declared."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mamba_lm.data.checks import check_choice, check_positive
from mamba_lm.data.lra.release import listops_release, pathfinder_release

log = logging.getLogger(__name__)


@dataclass
class LRAConfig:
    """Fields every Long Range Arena task shares."""

    kind: str = ""
    """lra_listops, lra_text, lra_retrieval, lra_image, lra_pathfinder or lra_pathx."""
    source: str = "archive"
    """"generate" (ListOps, Pathfinder), "archive" (files laid out as in lra_release), "hub" (Text, Image)."""
    archive_dir: str | None = None
    """archive: the task's folder (see each task's loader for the layout it expects)."""
    seqlen: int = 0
    """Maximum tokens per example (longer inputs are truncated); 0 = the task's LRA length."""
    cache_dir: str | None = None
    """Cache root for encoded/generated examples; null = $MAMBA_LM_CACHE or ~/.cache/mamba_lm."""
    pad_to_seqlen: bool = False
    """Pad every batch to seqlen (fixed shapes) instead of to its longest example."""
    pad_multiple: int = 1
    """Pad each batch to its longest example rounded up to a multiple of this (at most seqlen); 1 = to the
    longest, as S4. A multiple such as 64 makes batch shapes recur, so ``trainer.cuda_graph=true`` replays a
    few captured shapes instead of running each new length eagerly."""
    max_train_examples: int | None = None
    """Use at most this many training examples (quick runs); null = all."""
    max_eval_examples: int | None = None
    """Use at most this many validation/test examples; null = all."""

    def __post_init__(self) -> None:
        if self.seqlen < 0:
            raise ValueError(f"data.seqlen must be >= 0, got {self.seqlen}")
        check_positive("data.max_train_examples", self.max_train_examples)
        check_positive("data.pad_multiple", self.pad_multiple)
        check_positive("data.max_eval_examples", self.max_eval_examples)


@dataclass
class ListOpsConfig(LRAConfig):
    """ListOps: the value (0..9) of a nested MAX/MIN/MED/SM expression."""

    kind: str = "lra_listops"
    source: str = "auto"
    """"auto": lra_release's listops-1000 rows when archive_dir holds them (LRA's test set, which published
    numbers use), else "generate" (LRA's generator rules: the same distribution, another sample)."""
    num_train: int = 96_000
    """generate: training examples (LRA: 96k)."""
    num_val: int = 2_000
    """generate: validation examples (LRA: 2k)."""
    num_test: int = 2_000
    """generate: test examples (LRA: 2k)."""
    min_length: int = 500
    """generate: lengths (digits + operators + brackets) lie strictly above this."""
    max_length: int = 2000
    """generate: ... and strictly below this."""
    max_depth: int = 10
    """generate: maximum tree depth."""
    max_args: int = 10
    """generate: maximum arguments per operator."""
    generation_seed: int = 0
    """generate: seed of the data set (fixed, so every run sees the same data)."""
    workers: int | None = None
    """generate: processes (null = all cores)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.source", self.source, ("auto", "generate", "archive"))
        if self.source == "auto":
            self.source = "archive" if listops_release(self.archive_dir) is not None else "generate"


@dataclass
class TextConfig(LRAConfig):
    """Text: IMDB sentiment (2 classes) read as bytes."""

    kind: str = "lra_text"
    hub_path: str = "stanfordnlp/imdb"
    """hub: the dataset name, or a folder written by ``save_to_disk``."""
    val_fraction: float = 0.0
    """Share of train held out for validation; 0 = validate on test, as LRA did."""
    split_seed: int = 0
    """Seed of the train/validation split."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.source", self.source, ("archive", "hub"))


@dataclass
class RetrievalConfig(LRAConfig):
    """Retrieval: whether two AAN papers are linked by a citation (2 classes), read as bytes."""

    kind: str = "lra_retrieval"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.source", self.source, ("archive",))


@dataclass
class ImageConfig(LRAConfig):
    """Image: CIFAR-10 in grayscale as a sequence of 1024 pixel intensities (10 classes)."""

    kind: str = "lra_image"
    hub_path: str = "uoft-cs/cifar10"
    """hub: the dataset name, or a folder written by ``save_to_disk``."""
    val_fraction: float = 0.1
    """Share of train held out for validation."""
    split_seed: int = 0
    """Seed of the train/validation split."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.source", self.source, ("archive", "hub"))


@dataclass
class PathfinderConfig(LRAConfig):
    """Pathfinder / Path-X: are the two marked dots joined by one contour? (2 classes)."""

    kind: str = "lra_pathfinder"
    source: str = "auto"
    """"auto": the lra_release images when archive_dir holds them (the LRA task), else "generate" (locally
    drawn images: a different task, labelled "generated" wherever results are shown); or either explicitly."""
    resolution: int | None = None
    """Image side in pixels; null = 32 for lra_pathfinder, 128 for lra_pathx. seqlen = resolution ** 2."""
    difficulty: str = "hard"
    """Contour length: easy (6 paddles), intermediate (9) or hard (14; what LRA uses)."""
    num_examples: int = 200_000
    """generate: images in all (split into train/val/test)."""
    val_fraction: float = 0.1
    """Share of the images held out for validation."""
    test_fraction: float = 0.1
    """Share of the images held out for test."""
    split_seed: int = 42
    """Seed of the train/val/test split."""
    generation_seed: int = 0
    """generate: seed of the images."""
    workers: int | None = None
    """generate: processes (null = all cores)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("data.source", self.source, ("auto", "generate", "archive"))
        check_choice("data.difficulty", self.difficulty, ("easy", "intermediate", "hard"))
        if self.resolution is None:
            self.resolution = 128 if self.kind == "lra_pathx" else 32
        if self.resolution < 32:
            raise ValueError(f"data.resolution must be >= 32, got {self.resolution}")
        if self.source == "auto":
            release = pathfinder_release(self.archive_dir, self.resolution, self.difficulty)
            self.source = "archive" if release is not None else "generate"
            if release is None:
                log.warning(
                    "%s: no lra_release images under data.archive_dir=%s; using generated images, a "
                    "different task from LRA's (results are labelled 'generated')",
                    self.kind,
                    self.archive_dir,
                )
        if not 0 < self.val_fraction + self.test_fraction < 1:
            raise ValueError("data.val_fraction + data.test_fraction must lie in (0, 1)")
