"""The import graph between the project's packages, read from the source with ``ast`` (nothing is imported).

Packages (import names, repository folders): ``mamba_lm.kernels`` (kernels/), the models ``mamba_lm``
(mamba_lm/ without trainer/), ``mamba_lm.trainer`` (mamba_lm/trainer/, with ``mamba_lm.pretrained``, which
reads run folders), ``mamba_lm.data`` (data/) and ``mamba_lm.evaluation`` (evaluation/). The graph reads
kernels <- models <- trainer <- evaluation, with data beside the models (the trainer and evaluation use it).
The rules:

- an import of another project module stands at the top of a file, not inside a function (the exceptions:
  ``DEFERRED_THIRD_PARTY`` and the commented ``ALLOWED_IN_FUNCTIONS``);
- it goes the allowed direction (``ALLOWED``) and uses the long names (``mamba_lm.kernels``, not ``kernels``);
- evaluation uses other packages' public names only: no ``_name`` or ``_module``, and the trainer through
  ``mamba_lm.trainer`` itself (``TRAINER_PUBLIC_MODULES`` apart).

Three modules are below every package and import none of them: ``mamba_lm._short_names`` (the import names),
``mamba_lm.config_files`` (where the Hydra configs are) and ``mamba_lm.files`` (the one atomic write: the only
module here or in benchmarks/ that renames files).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"kernels": "mamba_lm.kernels", "data": "mamba_lm.data", "evaluation": "mamba_lm.evaluation"}
BASE_MODULES = ("mamba_lm._short_names", "mamba_lm.files", "mamba_lm.config_files")
# mamba_lm.pretrained reads run folders through the trainer (and the training command uses it for
# ``init_from``): it stands beside the trainer; the models reach it only on first use (ALLOWED_IN_FUNCTIONS).
PACKAGE_OVERRIDES = {"mamba_lm.pretrained": "trainer"}

# Which packages each package may import (besides itself and BASE_MODULES).
ALLOWED = {
    "base": set(),
    "kernels": set(),
    "models": {"kernels"},
    "data": set(),
    "trainer": {"models", "kernels", "data"},
    "evaluation": {"models", "kernels", "data", "trainer"},
}

# Optional (or slow to import) third-party packages: a function may import one where it is used, and
# likewise a project module whose own top imports one (the Triton kernels, mamba_lm.hf).
DEFERRED_THIRD_PARTY = {
    "accelerate", "datasets", "huggingface_hub", "hydra", "lm_eval", "matplotlib", "omegaconf", "PIL",
    "transformers", "triton", "wandb",
}  # fmt: skip

IMPORT_MODULE = "importlib.import_module"
# The other imports of a project module inside a function, each with the reason it cannot stand at the
# top. Key: (file relative to the root, imported module or IMPORT_MODULE).
ALLOWED_IN_FUNCTIONS: dict[tuple[str, str], str] = {
    ("mamba_lm/__init__.py", IMPORT_MODULE): "lazy attribute from_pretrained: keeps `import mamba_lm` "
    "free of the trainer (run folders) it needs",
    ("mamba_lm/_short_names.py", IMPORT_MODULE): "the import-name machinery: imports mamba_lm.X for X",
    ("evaluation/__main__.py", IMPORT_MODULE): "the command the user names, loaded alone (its own package)",
    ("mamba_lm/models/lm.py", "mamba_lm.pretrained"): "the reference package's classmethods "
    "from_pretrained/save_pretrained; pretrained builds these classes through the trainer (a cycle)",
    ("mamba_lm/generation.py", "mamba_lm.static_decoder"): "a cycle: the decoder uses InferenceParams and "
    "sample from generation, generate() uses the decoder",
}


@dataclass(frozen=True)
class Import:
    file: str  # relative to ROOT
    line: int
    module: str  # absolute import name (IMPORT_MODULE for a call of importlib.import_module)
    names: tuple[str, ...]  # the names of a ``from module import a, b``; empty for ``import module``
    in_function: bool


def module_name(path: Path) -> str:
    """The import name of a source file, e.g. ``data/lm/shards.py`` -> ``mamba_lm.data.lm.shards``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[0] in FOLDERS:
        parts[0:1] = FOLDERS[parts[0]].split(".")
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_file(module: str) -> Path | None:
    """The source file of a project import name (a module or a package's __init__), or None."""
    parts = module.split(".")
    if parts[0] in FOLDERS:
        parts = FOLDERS[parts[0]].split(".") + parts[1:]
    if parts[0] != "mamba_lm":
        return None
    if len(parts) > 1 and "mamba_lm." + parts[1] in FOLDERS.values():
        parts = parts[1:]
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def package_of(module: str) -> str | None:
    """Which package an import name belongs to, or None when it is not the project's."""
    if module == IMPORT_MODULE:
        return None
    parts = module.split(".")
    if parts[0] in FOLDERS:  # a short name (``import kernels``) counts as the package too
        parts = FOLDERS[parts[0]].split(".") + parts[1:]
    name = ".".join(parts)
    for special, package in [(base, "base") for base in BASE_MODULES] + list(PACKAGE_OVERRIDES.items()):
        if name == special or name.startswith(special + "."):
            return package
    if parts[0] != "mamba_lm":
        return None
    if len(parts) > 1 and parts[1] in ("kernels", "data", "evaluation", "trainer"):
        return parts[1]
    return "models"


def source_files(folders=("kernels", "mamba_lm", "data", "evaluation")) -> list[Path]:
    files = []
    for folder in folders:
        files += sorted((ROOT / folder).rglob("*.py"))
    return files


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(path: Path) -> list[Import]:
    """Every import of a project module in the file (and every importlib.import_module call), with its place.

    ``from package import submodule`` counts as an import of ``package.submodule``.
    """
    module, is_package = module_name(path), path.name == "__init__.py"
    file = str(path.relative_to(ROOT))
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(file, child.lineno, alias.name, (), in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(child, module, is_package)
                for alias in child.names:
                    submodule = f"{target}.{alias.name}"
                    if module_file(submodule) is not None:
                        found.append(Import(file, child.lineno, submodule, (), in_function))
                    else:
                        found.append(Import(file, child.lineno, target, (alias.name,), in_function))
            elif isinstance(child, ast.Call) and ast.unparse(child.func).endswith("import_module"):
                found.append(Import(file, child.lineno, IMPORT_MODULE, (), in_function))
            functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
            visit(child, in_function or isinstance(child, functions))

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=file), False)
    return [item for item in found if item.module == IMPORT_MODULE or package_of(item.module)]


def all_imports() -> list[tuple[str, Import]]:
    """(importing package, import) for every project import in the four packages."""
    result = []
    for path in source_files():
        own = package_of(module_name(path))
        result += [(own, item) for item in imports_of(path)]
    return result


def imports_deferred_package(module: str) -> bool:
    """Whether the project module's own top-level imports include a DEFERRED_THIRD_PARTY package."""
    path = module_file(module)
    if path is None:
        return False
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
        names += [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
        if any(name.split(".")[0] in DEFERRED_THIRD_PARTY for name in names):
            return True
    return False


def test_every_package_folder_is_read():
    packages = {package_of(module_name(path)) for path in source_files()}
    assert packages == set(ALLOWED), packages
    assert len(source_files()) > 100


def test_no_project_import_inside_a_function():
    hidden = [
        f"{item.file}:{item.line}: {item.module}"
        for _, item in all_imports()
        if item.in_function
        and (item.file, item.module) not in ALLOWED_IN_FUNCTIONS
        and not imports_deferred_package(item.module)
    ]
    assert not hidden, "import at the top of the file instead:\n" + "\n".join(hidden)


def test_the_function_allowlist_has_no_stale_entry():
    used = {(item.file, item.module) for _, item in all_imports() if item.in_function}
    assert set(ALLOWED_IN_FUNCTIONS) <= used, set(ALLOWED_IN_FUNCTIONS) - used


def test_imports_go_the_allowed_direction():
    wrong = []
    for own, item in all_imports():
        target = package_of(item.module)
        if target is None or target == own or target == "base":
            continue
        if item.in_function and (item.file, item.module) in ALLOWED_IN_FUNCTIONS:
            continue  # an edge taken on first use, for the reason the allowlist gives
        if target not in ALLOWED[own]:
            wrong.append(f"{item.file}:{item.line}: {own} imports {target} ({item.module})")
    assert not wrong, "\n".join(wrong)


def test_project_imports_use_the_long_names():
    short = [
        f"{item.file}:{item.line}: {item.module}"
        for _, item in all_imports()
        if item.module.split(".")[0] in FOLDERS
    ]
    assert not short, "import mamba_lm.kernels / mamba_lm.data / mamba_lm.evaluation instead:\n" + "\n".join(
        short
    )


def test_evaluation_imports_only_public_names():
    private = []
    for own, item in all_imports():
        target = package_of(item.module)
        if own != "evaluation" or target in (None, "base", "evaluation"):
            continue
        names = [part for part in item.module.split(".") if part.startswith("_")]
        names += [name for name in item.names if name.startswith("_")]
        if names:
            private.append(f"{item.file}:{item.line}: {item.module} {names}")
    assert not private, "evaluation uses another package's private names:\n" + "\n".join(private)


# The trainer's modules that evaluation may import besides the package itself (mamba_lm.trainer's __init__).
TRAINER_PUBLIC_MODULES = {
    "mamba_lm.trainer.config_store": "Hydra schema registration (apart: the package needs no Hydra)",
}


def test_evaluation_uses_the_trainer_through_its_package():
    internal = [
        f"{item.file}:{item.line}: {item.module}"
        for own, item in all_imports()
        if own == "evaluation"
        and item.module.startswith("mamba_lm.trainer.")
        and item.module not in TRAINER_PUBLIC_MODULES
    ]
    assert not internal, "import these from mamba_lm.trainer (export them there):\n" + "\n".join(internal)


# Files allowed their own rename (none now; the test below fails on an entry that no longer renames).
RENAMES_LEFT: set[str] = set()


def renames_in(path: Path) -> list[str]:
    """``os.replace`` / ``os.rename`` / ``shutil.move`` and ``Path.rename`` / ``Path.replace`` calls."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        called = ast.unparse(node.func)
        one_path = len(node.args) == 1 and not node.keywords  # str.replace takes two
        if called in ("os.replace", "os.rename", "shutil.move") or (
            node.func.attr in ("rename", "replace") and one_path and called != "dataclasses.replace"
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {called}")
    return found


def test_renames_only_in_the_atomic_write_module():
    found = []
    for path in source_files() + source_files(("benchmarks",)):
        if path != ROOT / "mamba_lm" / "files.py" and str(path.relative_to(ROOT)) not in RENAMES_LEFT:
            found += renames_in(path)
    assert not found, "write through mamba_lm.files instead:\n" + "\n".join(found)
    assert renames_in(ROOT / "mamba_lm" / "files.py"), "the atomic-write module renames"
    assert all(renames_in(ROOT / name) for name in RENAMES_LEFT), "renames gone: empty RENAMES_LEFT"
