"""The code corpus builder (issue 11): pinned archives -> sorted, de-duplicated .py files -> jsonl shards.

Tiny wheels and an sdist are made here; nothing touches the network.
"""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

import mamba_lm.data.lm.code_corpus as code_corpus
import pytest
from conftest import lm_config
from mamba_lm.data import build_datamodule
from mamba_lm.data.__main__ import main
from mamba_lm.data.lm.code_corpus import build_code_corpus, check_outputs

PACKAGES = ["beta==2.0", "alpha==1.0", "gamma-pkg==0.3"]


def module_text(package: str, index: int) -> bytes:
    body = "".join(f"    total += {package}_{index}_{k} * {k}\n" for k in range(index % 5 + 1))
    return (
        f'"""Module {index} of {package}."""\n\ndef run_{index}(total=0):\n{body}    return total\n'.encode()
    )


def archive_files(package: str) -> dict[str, bytes]:
    files = {f"{package}/mod_{i:02d}.py": module_text(package, i) for i in range(12)}
    files[f"{package}/__init__.py"] = b"\n  \n"  # blank
    files[f"{package}/notes.txt"] = b"not python"
    files[f"{package}/shared.py"] = b"SHARED = 'the same bytes in two packages'\n"
    return files


def make_archives(folder, reverse: bool = False) -> None:
    """alpha and beta wheels, a gamma-pkg sdist; ``reverse`` stores the members in the other order."""
    folder.mkdir(parents=True, exist_ok=True)
    alpha = archive_files("alpha") | {"alpha/latin1.py": b"# caf\xe9\n", "alpha/huge.py": b"x = 1\n" * 200}
    beta = archive_files("beta") | {"beta/unicode.py": "PI = 3.14  # π, naïve\n".encode()}
    for name, files in (("alpha-1.0-py3-none-any.whl", alpha), ("beta-2.0-py3-none-any.whl", beta)):
        with zipfile.ZipFile(folder / name, "w") as wheel:
            for member in sorted(files, reverse=reverse):
                wheel.writestr(member, files[member])
    with tarfile.open(folder / "gamma_pkg-0.3.tar.gz", "w:gz") as sdist:
        files = archive_files("gamma")
        for member in sorted(files, reverse=reverse):
            info = tarfile.TarInfo(f"gamma_pkg-0.3/{member}")
            info.size = len(files[member])
            sdist.addfile(info, io.BytesIO(files[member]))


@pytest.fixture
def offline(monkeypatch):
    def no_network(spec, downloads):
        raise RuntimeError(f"pip download {spec} failed (offline test)")

    monkeypatch.setattr(code_corpus, "download", no_network)


def read_lines(out) -> list[dict]:
    return [json.loads(line) for path in sorted(out.glob("code-*.jsonl")) for line in path.open()]


def test_files_are_sorted_deduplicated_and_filtered(tmp_path, offline):
    make_archives(tmp_path / "dl")
    manifest = build_code_corpus(
        tmp_path / "out", PACKAGES, tmp_path / "dl", max_file_bytes=1000, shard_bytes=2000
    )
    lines = read_lines(tmp_path / "out")
    paths = [line["path"] for line in lines]
    assert paths == sorted(paths) and paths[0] == "alpha-1.0/alpha/mod_00.py"
    assert paths[-1] == "gamma-pkg-0.3/gamma_pkg-0.3/gamma/mod_11.py"
    shared = [p for p in paths if p.endswith("shared.py")]
    assert shared == ["alpha-1.0/alpha/shared.py"]  # the first of three identical files
    assert not any(p.endswith(("latin1.py", "huge.py", "__init__.py", ".txt")) for p in paths)
    assert {"text": "PI = 3.14  # π, naïve\n", "path": "beta-2.0/beta/unicode.py"} in lines
    assert manifest["files"] == {
        "python_files": 45,
        "kept": 38,
        "duplicates": 2,
        "not_utf8": 1,
        "too_large": 1,
        "blank": 3,
    }
    assert [p["name"] for p in manifest["packages"]] == ["alpha", "beta", "gamma-pkg"]
    assert manifest["packages"][2]["archive"] == "gamma_pkg-0.3.tar.gz"
    assert manifest["text_bytes"] == sum(len(line["text"].encode()) for line in lines)
    assert len(manifest["outputs"]) > 1 and check_outputs(tmp_path / "out") == manifest


def test_output_is_deterministic(tmp_path, offline):
    make_archives(tmp_path / "dl1")
    make_archives(tmp_path / "dl2", reverse=True)  # other archive bytes, the same files
    first = build_code_corpus(tmp_path / "out1", PACKAGES, tmp_path / "dl1", shard_bytes=3000)
    second = build_code_corpus(tmp_path / "out2", PACKAGES[::-1], tmp_path / "dl2", shard_bytes=3000)
    assert first["outputs"] == second["outputs"]
    assert first["packages"][0]["archive_sha256"] != second["packages"][0]["archive_sha256"]
    again = build_code_corpus(tmp_path / "out1", PACKAGES[:2], tmp_path / "dl1", shard_bytes=3000)
    assert sorted(p.name for p in (tmp_path / "out1").glob("code-*.jsonl")) == [
        entry["file"] for entry in again["outputs"]
    ]  # a smaller rebuild leaves no stale shard behind


def test_missing_archive_and_bad_specs(tmp_path, offline, monkeypatch):
    make_archives(tmp_path / "dl")
    with pytest.raises(RuntimeError, match="pip download delta==4.0 failed"):
        build_code_corpus(tmp_path / "out", ["alpha==1.0", "delta==4.0"], tmp_path / "dl")
    assert not (tmp_path / "out" / "manifest.json").exists()
    with pytest.raises(ValueError, match="'alpha>=1.0' is not NAME==VERSION"):
        build_code_corpus(tmp_path / "out", ["alpha>=1.0"], tmp_path / "dl")

    def fetch(spec, downloads):  # stands in for pip: the archive appears in the downloads folder
        (downloads / "delta-4.0-py3-none-any.whl").write_bytes(
            (tmp_path / "dl" / "alpha-1.0-py3-none-any.whl").read_bytes()
        )

    monkeypatch.setattr(code_corpus, "download", fetch)
    manifest = build_code_corpus(tmp_path / "out", ["delta==4.0"], tmp_path / "dl")
    assert manifest["files"]["kept"] == 14  # alpha's files under delta's name, none a duplicate


def test_command_and_local_files_read_the_corpus(tmp_path, offline, capsys):
    make_archives(tmp_path / "dl")
    out = tmp_path / "code"
    args = ["code-corpus", f"out={out}", f"downloads={tmp_path / 'dl'}", "packages=alpha==1.0,beta==2.0"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["files"]["kept"] == 27
    assert main(["code-corpus", f"out={out}", "package=alpha==1.0"]) == 2
    dataset = {"source": "files", "files": [str(out / "code-*.jsonl")], "format": "json"}
    module = build_datamodule(lm_config(tmp_path / "cache", dataset, validation={"fraction": 0.3}), seed=0)
    assert (
        module.manifest["splits"]["train"]["documents"] + module.manifest["splits"]["val"]["documents"] == 27
    )
