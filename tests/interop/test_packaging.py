"""Packaging: the dependencies' markers and bounds, and a wheel built from the project's files (offline,
no build isolation) that holds the Hydra configs and the console commands; installed into a plain
folder, its training command runs from a user folder that has its own ``data/`` and ``evaluation/``
packages, without the checkout on the path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from evaluation_parts import REPO_ROOT, generated_sentences, subprocess_env
from safetensors.torch import load_file

from mamba_lm import build_model, configs
from mamba_lm.pretrained import save_pretrained

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
SCRIPTS = {"mamba-lm-train", "mamba-lm-eval", "mamba-lm-evaluate"}


def _requirements() -> dict[str, str]:
    project = PYPROJECT["project"]
    found = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        found += extra
    return {r.split(";")[0].split(">")[0].split("=")[0].split("[")[0].strip(): r for r in found}


def test_dependencies_have_lower_bounds_markers_and_extras():
    requirements = _requirements()
    for name in ("torch", "transformers", "lm-eval", "hydra-core", "accelerate", "datasets"):
        assert ">=" in requirements[name] and "<" not in requirements[name].split(";")[0], requirements[name]
    assert requirements["triton"].startswith("triton>=3.6,<3.9;")  # 3.9's interpreter: see pyproject.toml
    assert "sys_platform == 'linux'" in requirements["triton"]  # no wheels for macOS / Windows
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"train", "eval", "dev"} <= set(extras)
    assert not any(
        name in " ".join(PYPROJECT["project"]["dependencies"]) for name in ("hydra", "wandb", "lm-eval")
    )
    assert set(PYPROJECT["project"]["scripts"]) == SCRIPTS


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of the committed layout, built from a copy of the project's files (no network)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(REPO_ROOT / name, source)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    for folder in ("mamba_lm", "kernels", "data", "evaluation", "configs"):
        shutil.copytree(REPO_ROOT / folder, source / folder, ignore=ignore)
    out = tmp_path_factory.mktemp("wheel")
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "-q",
        "-w",
        str(out),
    ]
    result = subprocess.run([*command, str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return next(out.glob("*.whl"))


def test_wheel_holds_the_configs_and_the_commands(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in (
        "train.yaml",
        "optim/adamw.yaml",
        "data/local_files.yaml",
        "experiment/lra/quick/listops.yaml",
    ):
        assert f"mamba_lm_configs/{config}" in names
    # kernels/, data/, evaluation/ go inside mamba_lm: no top-level package that another could shadow
    for package in ("kernels", "data", "evaluation"):
        assert f"mamba_lm/{package}/__init__.py" in names
        assert f"{package}/__init__.py" not in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    lines = zipfile.ZipFile(wheel).read(entry_points).decode().splitlines()
    targets = dict(line.split(" = ") for line in lines if " = " in line)
    assert set(targets) == SCRIPTS
    for target in targets.values():  # each command's module is in the wheel
        assert target.split(":")[0].replace(".", "/") + ".py" in names, target


TRAIN_FROM_INSTALLED = """
import sys
from mamba_lm.trainer import app
assert "checkout" not in app.config_dir().as_posix() and app.config_dir().name == "mamba_lm_configs"
sys.argv = ["mamba-lm-train", *sys.argv[1:]]
app.main()
"""


def test_installed_wheel_trains_from_pretrained_weights_in_a_user_folder(wheel, tmp_path):
    """mamba-lm-train from the installed wheel, in a folder with its own data/ and evaluation/ packages and
    with another ``kernels`` package installed (Hugging Face's), starting from save_pretrained weights
    (model.init_from) with a learning rate too small to move them."""
    target = tmp_path / "site"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (target / "kernels").mkdir()  # Hugging Face's kernels package, installed beside ours
    (target / "kernels" / "__init__.py").write_text(
        "raise ImportError('the other kernels package was imported')"
    )
    user = tmp_path / "user"
    for package in ("data", "evaluation"):  # a user's own packages of the same names
        (user / package).mkdir(parents=True)
        (user / package / "__init__.py").write_text(
            f"raise ImportError('the user folder {package}/ was imported')"
        )
    torch.manual_seed(0)
    pretrained = build_model(configs.get("mamba_tiny", vocab_size=300))
    with torch.no_grad():
        for p in pretrained.parameters():
            p.add_(0.1 * torch.randn_like(p))
    save_pretrained(pretrained, user / "pretrained")
    corpus = user / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"text": s}) + "\n" for s in generated_sentences(300)))
    overrides = [
        f"hydra.run.dir={user / 'run'}",
        "model=mamba_tiny",
        f"model.init_from={user / 'pretrained'}",
        "optim.lr=1e-12",
        "optim.min_lr=0",
        "data=local_files",
        f"data.dataset.files=[{corpus}]",
        "data.tokenizer.vocab_size=300",
        "data.seqlen=32",
        f"data.cache_dir={tmp_path / 'cache'}",
        "trainer.max_steps=2",
        "trainer.micro_batch_size=2",
        "trainer.eval_every=0",
        "trainer.progress_bar=false",
        "trainer.cpu=true",
        "logger=none",
    ]
    env = dict(subprocess_env(), PYTHONPATH=str(target), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    # python -c puts the user folder first on the path, ahead of the installed packages
    python = [sys.executable, "-c", TRAIN_FROM_INSTALLED, *overrides]
    result = subprocess.run(python, cwd=user, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "finished at step 2" in result.stdout
    assert "step=2 train/loss=" in result.stdout + result.stderr  # the plain metric line
    checkpoint = user / "run" / "checkpoints" / "step_00000002"
    assert (checkpoint / "run_config.json").is_file()
    evaluate = [sys.executable, "-m", "mamba_lm.evaluation", "lra", "colour=blue"]  # = mamba-lm-evaluate
    result = subprocess.run(evaluate, cwd=user, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "unknown key 'colour' for 'lra'" in result.stderr, result.stderr[-3000:]
    trained = load_file(str(checkpoint / "model.safetensors"))
    for name, weight in pretrained.state_dict().items():
        if name in trained:  # the tied LM head is stored once
            assert torch.allclose(trained[name], weight, atol=1e-6), name
