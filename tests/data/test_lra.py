"""Long Range Arena data modules: generated sets and readers of fixtures laid out like the real archive."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from mamba_lm.data import build_datamodule
from mamba_lm.data.lra import listops
from mamba_lm.data.lra.datamodule import classification_batch
from mamba_lm.data.lra.pathfinder import generate_image, style_for
from mamba_lm.data.lra.release import s4_split_assignment
from mamba_lm.data.lra.tasks import rgb_to_gray
from PIL import Image


def decode_bytes(ids, length) -> bytes:
    return bytes((np.asarray(ids[:length]) - 1).astype(np.uint8).tolist())


def all_batches(loader):
    return [batch for batch in loader]


def test_generated_listops_quick_mode(tmp_path):
    config = {"kind": "lra_listops", "cache_dir": str(tmp_path), "seqlen": 64, "num_train": 60, "num_val": 10}
    config.update(num_test=10, min_length=10, max_length=80, max_depth=4, max_args=4, workers=1)
    module = build_datamodule(config, seed=0)
    assert (module.task, module.num_classes, module.vocab_size, module.pad_token_id) == (
        "classification",
        10,
        16,
        0,
    )
    assert module.describe()["train_examples"] == 60 and module.has_test
    batch = next(module.train_loader(8))
    assert batch["input_ids"].shape[0] == 8 and batch["input_ids"].shape[1] <= 64
    for ids, length, label in zip(batch["input_ids"], batch["lengths"], batch["labels"]):
        tokens = [listops.VOCAB[i] for i in ids[:length].tolist()]
        assert (ids[length:] == 0).all() and len(tokens) == int(length)
        if len(tokens) < 64:  # untruncated: the tokens evaluate to the label
            assert listops.evaluate(" ".join(tokens)) == int(label)
    val = all_batches(module.val_loader(4))
    assert sum(len(b["labels"]) for b in val) == 10
    texts = lambda split: {tuple(b.tolist()) for batch in all_batches(split) for b in batch["input_ids"]}
    assert not texts(module.val_loader(4)) & texts(module.test_loader(4))


def test_pad_multiple_rounds_each_batch_up_to_recurring_widths(tmp_path):
    """data.pad_multiple pads a batch past its longest row to the next multiple (at most seqlen); the rows,
    labels and lengths are those of the default padding, and the data set is the same cached one."""
    config = {"kind": "lra_listops", "cache_dir": str(tmp_path), "seqlen": 64, "num_train": 60, "num_val": 10}
    config.update(num_test=10, min_length=5, max_length=40, max_depth=3, max_args=3, workers=1)
    longest = build_datamodule(config, seed=0)
    rounded = build_datamodule({**config, "pad_multiple": 16}, seed=0)
    assert rounded.folder == longest.folder
    rounded_up = 0
    for _, plain, padded in zip(range(7), longest.train_loader(4), rounded.train_loader(4)):
        longest_row = int(plain["lengths"].max())
        width = padded["input_ids"].shape[1]
        assert plain["input_ids"].shape[1] == longest_row
        assert width == min(64, -(-longest_row // 16) * 16) and width in (16, 32, 48, 64)
        assert torch.equal(padded["input_ids"][:, :longest_row], plain["input_ids"])
        assert not padded["input_ids"][:, longest_row:].any()  # pad id 0
        assert torch.equal(padded["lengths"], plain["lengths"])
        assert torch.equal(padded["labels"], plain["labels"])
        rounded_up += width > longest_row
    assert rounded_up > 0
    with pytest.raises(ValueError, match="pad_multiple"):
        build_datamodule({**config, "pad_multiple": 0}, seed=0)


def test_listops_archive_matches_what_was_written(tmp_path):
    rows = listops.generate(30, seed=4, min_length=10, max_length=60)
    folder = tmp_path / "lra_release" / "listops-1000"
    folder.mkdir(parents=True)
    for split, part in (("train", rows[:20]), ("val", rows[20:25]), ("test", rows[25:])):
        with open(folder / f"basic_{split}.tsv", "w", newline="") as handle:
            writer = csv.writer(handle, delimiter="\t")
            writer.writerow(["Source", "Target"])
            writer.writerows(part)
    config = {
        "kind": "lra_listops",
        "source": "archive",
        "archive_dir": str(folder),
        "cache_dir": str(tmp_path / "c"),
    }
    module = build_datamodule(config, seed=0)
    test = all_batches(module.test_loader(5))[0]
    for (source, label), ids, length, got in zip(
        rows[25:], test["input_ids"], test["lengths"], test["labels"]
    ):
        assert ids[:length].tolist() == listops.encode(source).tolist() and int(got) == label
    from mamba_lm.data.lra.config import (
        ListOpsConfig,  # source auto: the release when present, from its root too
    )

    assert ListOpsConfig(archive_dir=str(tmp_path / "lra_release")).source == "archive"
    assert ListOpsConfig(archive_dir=str(tmp_path)).source == ListOpsConfig().source == "generate"
    (folder / "basic_val.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="basic_val.tsv does not exist"):
        build_datamodule({**config, "seqlen": 100}, seed=0)


def write_imdb(folder, reviews):
    for split in ("train", "test"):
        for polarity in ("pos", "neg"):
            (folder / split / polarity).mkdir(parents=True)
    for index, (split, polarity, text) in enumerate(reviews):
        (folder / split / polarity / f"{index}_7.txt").write_text(text, encoding="utf-8")


def test_imdb_archive_and_hub_copies_agree(tmp_path):
    import datasets

    reviews = [
        ("train", "pos", "Great film! ünïcode"),
        ("train", "neg", "Dull."),
        ("train", "pos", "Loved it " * 30),
    ]
    reviews += [("test", "neg", "Awful acting."), ("test", "pos", "A classic.")]
    write_imdb(tmp_path / "aclImdb", reviews)
    archive = build_datamodule(
        {
            "kind": "lra_text",
            "archive_dir": str(tmp_path / "aclImdb"),
            "cache_dir": str(tmp_path / "c"),
            "seqlen": 64,
        },
        seed=0,
    )
    assert (archive.vocab_size, archive.num_classes, archive.pad_token_id) == (257, 2, 0)
    test = all_batches(archive.val_loader(8))[0]  # validation is the test split, as in LRA
    got = {
        decode_bytes(ids, n).decode(): int(label)
        for ids, n, label in zip(test["input_ids"], test["lengths"], test["labels"])
    }
    assert got == {"Awful acting.": 0, "A classic.": 1}
    train = all_batches(archive.test_loader(8))
    assert len(train[0]["labels"]) == 2
    splits = {s: [(t, int(p == "pos")) for sp, p, t in reviews if sp == s] for s in ("train", "test")}
    datasets.DatasetDict(
        {
            s: datasets.Dataset.from_dict({"text": [t for t, _ in r], "label": [y for _, y in r]})
            for s, r in splits.items()
        }
    ).save_to_disk(tmp_path / "imdb_hub")
    hub = build_datamodule(
        {
            "kind": "lra_text",
            "source": "hub",
            "hub_path": str(tmp_path / "imdb_hub"),
            "cache_dir": str(tmp_path / "c"),
            "seqlen": 64,
        },
        seed=0,
    )
    hub_test = all_batches(hub.val_loader(8))[0]
    hub_got = {
        decode_bytes(i, n).decode(): int(y)
        for i, n, y in zip(hub_test["input_ids"], hub_test["lengths"], hub_test["labels"])
    }
    assert hub_got == got
    train = next(hub.train_loader(3))
    assert train["input_ids"].shape == (3, 64) and sorted(train["lengths"].tolist()) == [
        5,
        21,
        64,
    ]  # truncated


def test_aan_retrieval_pairs(tmp_path):
    folder = tmp_path / "tsv_data"
    folder.mkdir()
    rows = {
        "train": [
            ("1.0", "a", "b", "Paper one text.", "Paper two text."),
            ("0.0", "c", "d", "x" * 50, "short"),
        ],
        "eval": [("1", "e", "f", "Eval left", "Eval right")],
        "test": [("0", "g", "h", 'Quote " inside', "tab-free")],
    }
    for split, lines in rows.items():
        (folder / f"new_aan_pairs.{split}.tsv").write_text("".join("\t".join(r) + "\n" for r in lines))
    module = build_datamodule(
        {"kind": "lra_retrieval", "archive_dir": str(folder), "cache_dir": str(tmp_path), "seqlen": 32}, 0
    )
    assert module.num_documents == 2 and module.vocab_size == 257
    batch = next(module.train_loader(2))
    assert batch["input_ids"].shape == (2, 2, 32) and batch["lengths"].shape == (2, 2)
    pairs = {
        (decode_bytes(ids[0], n[0]), decode_bytes(ids[1], n[1])): int(y)
        for ids, n, y in zip(batch["input_ids"], batch["lengths"], batch["labels"])
    }
    assert pairs == {(b"Paper one text.", b"Paper two text."): 1, (b"x" * 32, b"short"): 0}
    test = all_batches(module.test_loader(4))[0]
    assert decode_bytes(test["input_ids"][0, 0], test["lengths"][0, 0]) == b'Quote " inside'


def test_cifar_binary_in_grayscale(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-bin"
    folder.mkdir()
    images, labels = {}, {}
    for name, count in [(f"data_batch_{i}", 4) for i in range(1, 6)] + [("test_batch", 3)]:
        rgb = rng.integers(0, 256, size=(count, 32, 32, 3), dtype=np.uint8)
        labels[name] = rng.integers(0, 10, size=count, dtype=np.uint8)
        records = np.concatenate(
            [labels[name][:, None], rgb.transpose(0, 3, 1, 2).reshape(count, -1)], axis=1
        )
        (folder / f"{name}.bin").write_bytes(records.tobytes())
        images[name] = rgb
    module = build_datamodule(
        {"kind": "lra_image", "archive_dir": str(folder), "cache_dir": str(tmp_path), "val_fraction": 0.1}, 0
    )
    assert module.describe()["train_examples"] == 18 and module.describe()["val_examples"] == 2
    test = all_batches(module.test_loader(3))[0]
    expected = [np.asarray(Image.fromarray(image).convert("L")).reshape(-1) for image in images["test_batch"]]
    assert all(np.array_equal(ids.numpy(), e) for ids, e in zip(test["input_ids"], expected))
    assert test["labels"].tolist() == labels["test_batch"].tolist() and test["input_ids"].shape == (3, 1024)
    assert np.array_equal(rgb_to_gray(images["test_batch"]), np.stack(expected).reshape(3, 32, 32))


def test_pathfinder_archive_layout(tmp_path):
    root = tmp_path / "pathfinder32" / "curv_contour_length_14"
    (root / "imgs" / "0").mkdir(parents=True)
    (root / "metadata").mkdir()
    style, lines, expected = style_for(32, "hard"), [], {}
    for index in range(12):
        image, label, _ = generate_image(np.random.default_rng([1, index]), style)
        Image.fromarray(image).save(root / "imgs" / "0" / f"sample_{index}.png")
        lines.append(f"imgs/0 sample_{index}.png {index} {label} 1.0 14 4 2 0.5 1 1")
        expected[image.tobytes()] = label
    (root / "imgs" / "0" / "sample_12.png").write_bytes(b"")  # LRA's archive holds one empty file
    lines.append("imgs/0 sample_12.png 12 1 1.0 14 4 2 0.5 1 1")
    (root / "metadata" / "0.npy").write_text("\n".join(lines) + "\n")
    # source auto finds the images from the lra_release folder (or pathfinder32/ itself)
    config = {"kind": "lra_pathfinder", "archive_dir": str(tmp_path)}
    config.update(cache_dir=str(tmp_path), val_fraction=0.25, test_fraction=0.25)
    module = build_datamodule(config, seed=0)
    assert module.config.source == "archive"
    assignment = s4_split_assignment(13, 0.25, 0.25, seed=42)[:12]  # entry 12 is the unreadable image
    assert [len(module.splits[s]) for s in ("train", "val", "test")] == np.bincount(
        assignment, minlength=3
    ).tolist()
    seen = {}
    for loader in (module.val_loader(4), module.test_loader(4)):
        for batch in loader:
            for ids, label in zip(batch["input_ids"], batch["labels"]):
                seen[ids.numpy().astype(np.uint8).tobytes()] = int(label)
    for batch in [next(module.train_loader(len(module.splits["train"])))]:
        for ids, label in zip(batch["input_ids"], batch["labels"]):
            seen[ids.numpy().astype(np.uint8).tobytes()] = int(label)
    assert seen == expected


def test_generated_pathfinder_splits_and_resume(tmp_path):
    config = {
        "kind": "lra_pathfinder",
        "cache_dir": str(tmp_path),
        "num_examples": 40,
        "difficulty": "easy",
        "workers": 1,
    }
    module = build_datamodule(config, seed=1)
    assert (module.seqlen, module.vocab_size, module.num_classes, module.pad_token_id) == (1024, 256, 2, None)
    assert [len(module.splits[s]) for s in ("train", "val", "test")] == [32, 4, 4]
    loader = module.train_loader(4)
    head = [next(loader) for _ in range(3)]
    state = json.loads(json.dumps(loader.state_dict()))
    straight = [next(b) for b in [module.train_loader(4)] for _ in range(12)]
    resumed = build_datamodule(config, seed=1).train_loader(4)
    resumed.load_state_dict(state)
    tail = [next(resumed) for _ in range(9)]
    assert all((a["input_ids"] == b["input_ids"]).all() for a, b in zip(head + tail, straight))
    ranks = [build_datamodule(config, seed=1, rank=r, world_size=2).train_loader(2) for r in (0, 1)]
    first = [next(r)["input_ids"] for r in ranks]
    assert (first[0] == straight[0]["input_ids"][:2]).all() and (
        first[1] == straight[0]["input_ids"][2:]
    ).all()
    pathx = build_datamodule(
        {**config, "kind": "lra_pathx", "num_examples": 4, "val_fraction": 0.25, "test_fraction": 0.25}, 0
    )
    assert pathx.seqlen == 128 * 128 and next(iter(pathx.val_loader(1)))["input_ids"].shape == (1, 16384)


def test_classification_batch_padding():
    examples = [[np.array([5, 6, 7])], [np.array([8])]]
    batch = classification_batch(examples, np.array([1, 0]), pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]] and batch["lengths"].tolist() == [3, 1]
    fixed = classification_batch(examples, np.array([1, 0]), pad_token_id=0, width=5)
    assert fixed["input_ids"].shape == (2, 5)
    with pytest.raises(ValueError, match="no pad id"):
        classification_batch(examples, np.array([1, 0]), pad_token_id=None)


def test_missing_archive_folder_is_explained(tmp_path):
    with pytest.raises(ValueError, match="archive_dir is required"):
        build_datamodule({"kind": "lra_retrieval", "cache_dir": str(tmp_path)}, 0)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        build_datamodule(
            {"kind": "lra_text", "archive_dir": str(tmp_path / "nope"), "cache_dir": str(tmp_path)}, 0
        )


def test_empty_documents_count_as_one_pad_token():
    batch = classification_batch([[np.array([], dtype=np.uint16)], [np.array([4, 5])]], np.array([0, 1]), 0)
    assert batch["lengths"].tolist() == [1, 2] and batch["input_ids"].tolist() == [[0, 0], [4, 5]]


def test_s4_split_is_torch_random_split():
    """The archive split is S4's: torch.utils.data.random_split(lengths [n - val - test, val, test], seed)."""
    import torch

    subsets = torch.utils.data.random_split(
        range(103), [83, 10, 10], generator=torch.Generator().manual_seed(42)
    )
    assignment = s4_split_assignment(103, 0.1, 0.1, seed=42)
    for split, subset in enumerate(subsets):
        assert sorted(subset.indices) == np.flatnonzero(assignment == split).tolist()


def test_pathfinder_without_the_release_falls_back_to_generated_images(tmp_path):
    from mamba_lm.data.lra.config import PathfinderConfig

    assert PathfinderConfig(archive_dir=None).source == "generate"
    assert PathfinderConfig(archive_dir=str(tmp_path)).source == "generate"  # no images there
    assert PathfinderConfig(source="archive", archive_dir=str(tmp_path)).source == "archive"  # as asked
