"""``docs/reproduction.md``: the Mamba paper's (and S4's) claims beside ours, from the reproduction runs.

``python -m evaluation report mode=reproduction root=outputs/repro out=docs`` reads the run folders that
``benchmarks/reproduce.py`` writes (one per run name below) and writes ``reproduction.md`` and its PNGs.
A claim whose runs are missing or not yet evaluated is listed as not run, never left out; every number says
how many of the paper's steps it was measured after, and each section lists the exact commands (Hydra's
recorded overrides) and its deviations from the published setting.

Run folders are large and live outside the repository, so a report may be regenerated where only some of
them exist (a new machine, a run resumed elsewhere). A section with no results under ``root`` is carried
over unchanged from the report already in ``out_dir`` (a claim none of whose run folders is there keeps its
status row), a rebuilt section keeps the rows, commands and deviations of its runs whose folders are gone,
and the report says what was carried: regenerating never replaces published results with "not run".
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml
from tokenizers import Tokenizer

from mamba_lm.trainer import build_model_from_dict, list_checkpoints, model_flops_per_token, step_of

from ..published import INDUCTION_HEADS_PUBLISHED, LRA_PUBLISHED, SELECTIVE_COPYING_PUBLISHED
from ..results import checkpoint_evaluations, write_text_atomic
from .document import Document, Heading, Image, Paragraph, Table
from .plots import plot_accuracy_curves, plot_length_generalization, plot_loss_against_flops
from .runs import RunRecord, load_run
from .tables import fmt

SCALING_SIZES = ("s", "m", "l")
# The published runs' step counts (Mamba paper App. E.1; S4's configs for LRA), by our run name.
PAPER_STEPS = {
    "induction_heads": 204_800,
    "induction_heads_trigger5": 204_800,
    "induction_heads_attention": 409_600,
    "selective_copying": 400_000,
    "selective_copying_s4d": 400_000,
    "selective_copying_mamba_s4d": 400_000,
    "lra_s4_listops": 76_800,
    "lra_s4_pathfinder": 500_000,
    "lra_mamba_listops": 76_800,  # S4's budget for the task (experiment=lra/mamba/<task>_v3)
    "lra_mamba_pathfinder": 500_000,
    "lra_mamba_pathfinder_mean": 500_000,
}
SCALING_FAMILIES = ("mamba", "transformer")
SCALING_LABELS = {"mamba": "Mamba", "transformer": "Transformer++"}
LISTOPS_BAR = 56.6  # the issue's requirement: within 3 points of S4's published 59.60
PAPER_SELECTIVE_COPYING_LR = 1e-4  # "a constant learning rate of 0.0001" (App. E.1)

DEVIATIONS = {
    "induction_heads": [
        "Loss on the recalled token only (data.supervise=answer); the paper does not say which positions it "
        "supervises (configs/experiment/synthetic/induction_heads.yaml explains the choice).",
        "Our 2-layer D = 64 Mamba has 66,496 parameters against the paper's 74K: the difference is 112 "
        "embedding rows (a padded 128-row embedding gives 73,664); the mixers are the reference block's.",
        "The attention baseline is Transformer++ (RoPE, SwiGLU, RMSNorm), compared with the paper's "
        "MHA-RoPE row.",
        "The 'first trigger at 5' column is not the paper's setting (its trigger position is not published) "
        "but the public Mamba reproduction's (state-spaces/mamba issues #61, #62: data.trigger_position=5).",
        "Fewer steps than the paper where the step column says so (constant learning rate, so a shorter run "
        "is the paper's run stopped early).",
    ],
    "selective_copying": [
        "S4 is S4D-Lin (complex, N = 16) in both S4 rows: the paper does not say which S4 variant or "
        "state size they use. 'No gate / S4' (18.3) is our S4D mixer alone in its block; 'Mamba / S4' "
        "(56.4) is the Mamba block (projections, conv, gate) holding S4D in place of S6 (the MambaS4D "
        "mixer).",
        "Fewer steps than the paper's 400K where the step column says so (constant learning rate).",
    ],
    "lra": [
        "S4's layer is diagonal plus low rank (NPLR); ours is S4D-LegS, its diagonal part, so the S4D "
        "paper's "
        "S4D-LegS row is the closer reference.",
        "ListOps from LRA's generator rules when the lra_release archive is absent: the same distribution, "
        "a different sample of 96k/2k/2k (the table's source column says which).",
        "S4's ListOps tokens carry an <eos> token; ours do not.",
        "Test accuracy of the last checkpoint (S4's train.py tests the model as training left it) decides "
        "the status; the best-validation checkpoint (S4's checkpoint callback monitors val/accuracy; ours: "
        "trainer.keep_best) is tested too and shown beside it where it is another checkpoint.",
    ],
    "scaling": [
        "Not the Pile: Python source of pinned PyPI packages (configs/data/code_corpus.yaml), a BPE "
        "tokenizer trained on it. These losses are not comparable with the paper's Pile perplexities.",
        "62.9M tokens per run (one pass over the corpus), 65,536-token batches and a peak lr of 2e-3; "
        "where a family and size were also trained at other peak lrs (the lr sweep table), the table "
        "shows the finished run with the lowest final validation loss, chosen on the same held-out blocks "
        "it reports (the paper: Chinchilla-style token counts from 125M up, 0.5M-token batches, 5x "
        "GPT-3's per-size lr). With the same 62.9M tokens at every size, tokens per parameter fall from "
        "about 8 (s, 7.7M parameters) to 0.6 (l, ~100M), far below the ~20 of Chinchilla-style runs: the "
        "larger sizes are compared early in training, not at their compute-optimal point.",
        "Widths 256 / 512 / 768; Mamba has twice the layers of Transformer++ at each width, as in the "
        "paper, so each pair has about the same parameter count.",
    ],
}


def build_reproduction(root: str | Path, out_dir: str | Path) -> Path:
    """Write ``reproduction.md`` (and PNGs) into ``out_dir`` from the run folders under ``root``. What the
    ``reproduction.md`` already there says is kept where the runs are gone (a new machine): a section with
    no results under ``root`` as it was, and in a rebuilt section the rows, commands and deviations of its
    runs whose folders are absent."""
    root, out_dir = Path(root), Path(out_dir)
    _run.cache_clear()  # every section asks for runs by name; each folder is read once per report
    if not root.is_dir():
        raise ValueError(f"reproduction root {root} is not a folder (benchmarks/reproduce.py --root)")
    out_dir.mkdir(parents=True, exist_ok=True)
    previous = PreviousReport.read(out_dir / "reproduction.md")
    # (title, its run names, its builder). The scaling builder carries its own cells from ``previous``, one
    # family at a time; its table's rows are sizes, never a run's name, so _with_absent_runs carries none.
    sections = (
        (INDUCTION_HEADS_TITLE, [name for name, _, _ in INDUCTION_HEADS_RUNS], _induction_heads),
        (SELECTIVE_COPYING_TITLE, [name for name, _ in SELECTIVE_COPYING_RUNS], _selective_copying),
        (LRA_TITLE, list(LRA_RUNS), _lra),
        (SCALING_TITLE, SCALING_RUNS, functools.partial(_scaling, previous=previous)),
    )
    blocks, carried, carried_runs = [], [], []
    for title, names, build in sections:
        before = previous.sections.get(title)
        section = build(root, out_dir)
        if before is not None and not any(isinstance(block, Table) for block in section):
            blocks += [Heading(title), Paragraph(before)]  # nothing (evaluated) here: keep it as it was
            carried.append(title)
            continue
        absent = [name for name in names if not (root / name).is_dir()]
        if before is not None and absent:
            section, kept = _with_absent_runs(section, before, absent, names)
            carried_runs += kept
        blocks += section
    intro = (
        "Generated by `python -m evaluation report mode=reproduction` from the run folders that "
        "`python benchmarks/reproduce.py` trains in resumable pieces on one H200. Every number is ours "
        "unless the column says paper; each section lists its commands and its deviations."
    )
    if carried:
        intro += (
            " Carried over unchanged from the previous version of this file, because no run folder under "
            f"the root had results for them when it was regenerated: {'; '.join(carried)}."
        )
    if carried_runs:
        intro += (
            " Runs whose rows, commands and deviations were carried over from the previous version, their "
            f"folders absent when it was regenerated: {', '.join(carried_runs)}."
        )
    doc = Document()
    doc.add(Heading("Reproducing the Mamba paper's claims", level=1), Paragraph(intro))
    doc.add(Heading(STATUS_TITLE), _status_table(root, previous))
    doc.add(*blocks)
    return write_text_atomic(out_dir / "reproduction.md", doc.to_markdown())


STATUS_TITLE = "Where each claim stands"
INDUCTION_HEADS_TITLE = "Induction heads (Table 11): trained at 256, tested to 2^20"
SELECTIVE_COPYING_TITLE = "Selective copying (Table 1)"
LRA_TITLE = "Long Range Arena: ListOps and Pathfinder"
SCALING_TITLE = "Mamba vs Transformer++ at equal parameters and tokens (Fig. 4, small scale)"
SCALING_RUNS = [f"scaling_{family}_{size}" for family in SCALING_FAMILIES for size in SCALING_SIZES]
SCALING_CLAIM = "Scaling: Mamba and Transformer++ at three sizes"


@dataclass
class PreviousReport:
    """What an earlier ``reproduction.md`` holds: each section's Markdown below its heading, and the status
    table's rows by claim."""

    sections: dict[str, str] = field(default_factory=dict)
    status_rows: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path) -> PreviousReport:
        if not path.is_file():
            return cls()
        sections: dict[str, str] = {}
        title, lines = None, []
        for line in path.read_text().splitlines() + ["## "]:
            if line.startswith("## "):
                if title is not None:
                    sections[title] = "\n".join(lines).strip()
                title, lines = line[3:].strip(), []
            else:
                lines.append(line)
        rows = {}
        for line in sections.pop(STATUS_TITLE, "").splitlines()[2:]:  # below the header and its rule
            cells = _cells(line)
            if cells:
                rows[cells[0]] = cells
        return cls(sections, rows)


def _any_run_folder(root: Path, names: list[str]) -> bool:
    return any((root / name).is_dir() for name in names)


def _names_run(text: str, name: str) -> bool:
    """Whether a report line is about run ``name``: its table cell or its run folder (not a longer name that
    starts with it, e.g. selective_copying_s4d for selective_copying)."""
    return (
        re.search(rf"(?<![\w/]){re.escape(name)}(?![\w])|outputs/repro/{re.escape(name)}(?![\w])", text)
        is not None
    )


def _with_absent_runs(
    section: list, before: str, absent: list[str], order: list[str]
) -> tuple[list, list[str]]:
    """A section rebuilt from the run folders present, given what its previous version (``before``, the
    Markdown under its heading) said of the runs now ``absent``: their rows of its first table (the rows
    whose first cell names an absent run; such a row replaces the rebuilt table's row of that run, else it
    is added, and the rows then follow the section's run ``order``; a column the previous table lacked
    reads '-'), their command lines (with the lr comments above them) and the deviation lines that name
    them. Returns (blocks, the absent runs that had something carried)."""
    lines = before.splitlines()
    table = next((block for block in section if isinstance(block, Table)), None)
    kept: set[str] = set()
    header = next((line for line in lines if line.startswith("|")), None)
    if table is not None and header is not None and _cells(header)[0] == table.header[0]:
        columns, carried = _cells(header), []
        for line in lines[lines.index(header) + 2 :]:
            if not line.startswith("|"):
                break
            by_column = dict(zip(columns, _cells(line)))
            cells = [by_column.get(column, "-") for column in table.header]
            if cells[0] in absent and cells not in table.rows:
                carried.append(cells)
                kept.add(cells[0])
        keys = {cells[0] for cells in carried}  # the rebuilt rows of those runs say "not run": replaced
        table.rows[:] = [row for row in table.rows if row[0] not in keys] + carried
        rank = {name: i for i, name in enumerate(order)}
        table.rows.sort(key=lambda row: rank.get(row[0], len(order)))  # stable: other rows keep their order
    commands, pending = [], []
    inside = False
    for line in lines:
        if line.startswith("```"):
            inside = not inside
        elif inside and line.startswith("#"):
            pending.append(line)
        elif inside:
            if any(_names_run(line, name) for name in absent):
                commands += pending + [line]
                kept.update(name for name in absent if _names_run(line, name))
            pending = []
    listed = lines[lines.index("Deviations:") :] if "Deviations:" in lines else []
    deviations = [
        line[2:].removeprefix("(carried over) ")
        for line in listed
        if line.startswith("- ") and any(_names_run(line, n) for n in absent)
    ]
    for i, block in enumerate(section):
        if isinstance(block, Paragraph) and block.text.startswith("Commands:") and commands:
            section[i] = Paragraph(_with_commands(block.text, commands))
        elif isinstance(block, Paragraph) and block.text.startswith("Deviations:") and deviations:
            extra = [f"- (carried over) {line}" for line in deviations if f"- {line}" not in block.text]
            section[i] = Paragraph("\n".join([block.text, *extra]))
    return section, [name for name in absent if name in kept]


def _with_commands(text: str, carried: list[str]) -> str:
    """A "Commands:" block with the ``carried`` lines added: training commands (with the comments above
    them) after the block's training commands, evaluation commands at its end."""
    lines = text.splitlines()
    end = len(lines) - 1 - lines[::-1].index("```")
    evaluation = next((i for i in range(end) if lines[i].startswith("python -m evaluation")), end)
    first = next((i for i, line in enumerate(carried) if line.startswith("python -m evaluation")), None)
    training, evaluating = (carried, []) if first is None else (carried[:first], carried[first:])
    return "\n".join(lines[:evaluation] + training + lines[evaluation:end] + evaluating + lines[end:])


def _cells(line: str) -> list[str]:
    """The cells of one Markdown table row (escaped pipes kept inside their cell)."""
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]


def _synthetic_accuracy(root: Path, name: str, task: str) -> list[float] | None:
    """The accuracies of the run's latest evaluated checkpoint (None: not evaluated)."""
    run = _run(root, name)
    evaluations = _evaluations(run, task) if run else []
    return list(evaluations[-1]["accuracy"]) if evaluations else None


def _evaluations(run: RunRecord, task: str) -> list[dict]:
    """A synthetic run's evaluations, one per checkpoint, oldest step first (``checkpoint_evaluations``)."""
    return checkpoint_evaluations(run.results.get("synthetic", {}).get(task))


def _at_step(run: RunRecord, entry: dict) -> str:
    """'step 182,906 of the paper's 204,800' for an evaluation that recorded its checkpoint's step."""
    step = entry.get("step")
    paper = PAPER_STEPS.get(run.path.name)
    if step is None:
        return _steps_text(run)
    return f"step {fmt(step)}" + (f" of the paper's {fmt(paper)}" if paper else "")


def _induction_heads_status(root: Path) -> list[str]:
    claim = "Induction heads: Mamba >= 99% at every length 2^6..2^20"
    run = _run(root, "induction_heads")
    evaluations = _evaluations(run, "induction_heads") if run else []
    if not evaluations:
        return [claim, "not run", "-"]

    def meets(entry: dict) -> bool:
        return min(entry["accuracy"]) >= 99.0 and len(entry["accuracy"]) >= 15

    *earlier, latest = evaluations
    accuracy = latest["accuracy"]
    text = f"lowest {min(accuracy):.1f}% over {len(accuracy)} lengths at {_at_step(run, latest)}"
    passing = [entry for entry in earlier if meets(entry)]
    if meets(latest):
        return [claim, text, "met"]
    if passing:
        step = passing[-1].get("step")
        text += f"; >= 99% at all {len(passing[-1]['accuracy'])} lengths at step {fmt(step)} of the same run"
        return [claim, text, f"met at step {fmt(step)}, not at the last"]
    return [claim, text, "not met"]


def _status_table(root: Path, previous: PreviousReport) -> Table:
    """The issue's required results, each with what the runs show so far; a claim none of whose run folders
    is under ``root`` keeps its row from the previous report."""
    rows = [(_induction_heads_status(root), ["induction_heads"])]
    mamba = _synthetic_accuracy(root, "selective_copying", "selective_copying")
    s4d = _synthetic_accuracy(root, "selective_copying_s4d", "selective_copying")
    copying = (
        "not run" if mamba is None else f"Mamba {mamba[-1]:.1f}%" + (f", S4D {s4d[-1]:.1f}%" if s4d else "")
    )
    met = mamba is not None and s4d is not None and mamba[-1] >= 97.0 and mamba[-1] - s4d[-1] >= 20.0
    state = "met" if met else ("-" if mamba is None else "not met")
    claim = "Selective copying: Mamba >= 97%, a clear gap to S4D"
    rows.append(([claim, copying, state], ["selective_copying", "selective_copying_s4d"]))
    rows.append((_lra_status(root), ["lra_s4_listops"]))
    losses = _scaling_final_losses(root, previous)
    pairs = [size for size in SCALING_SIZES if all(losses[(f, size)] is not None for f in SCALING_FAMILIES)]
    scaling = [
        SCALING_CLAIM,
        f"both finished at {len(pairs)} of {len(SCALING_SIZES)} sizes ({', '.join(pairs) or 'none'})",
        "met" if len(pairs) == len(SCALING_SIZES) else "not met",
    ]
    rows.append((scaling, SCALING_RUNS))
    rows.append((_scaling_goal_status(losses, pairs), SCALING_RUNS))
    kept = [
        previous.status_rows.get(row[0], row) if not _any_run_folder(root, names) else row
        for row, names in rows
    ]
    return Table(["claim", "ours so far", "status"], kept)


def _scaling_final_losses(root: Path, previous: PreviousReport) -> dict[tuple[str, str], float | None]:
    """(family, size) -> the lowest final validation loss of its finished runs (every peak lr tried); for a
    pair none of whose run folders is under ``root``, the loss the previous report published (None: not
    finished)."""
    published = _previous_scaling_cells(previous)  # pairs whose run folders are gone keep their word
    losses = {}
    for key in ((family, size) for family in SCALING_FAMILIES for size in SCALING_SIZES):
        candidates = _scaling_candidates(root, *key)
        if not candidates:
            losses[key] = _number(published.get(key, ["-"])[-1])
            continue
        chosen = _chosen_run(candidates)  # the run the table shows: the lowest finished one, if any finished
        losses[key] = chosen.series("val_loss")[1][-1] if _reached_max_steps(chosen) else None
    return losses


def _scaling_goal_status(losses: dict[tuple[str, str], float | None], pairs: list[str]) -> list[str]:
    """The issue's goal for the scaling runs (Fig. 4: Mamba at or below Transformer++ at every size), on each
    family's lowest finished loss at the sizes where both finished."""
    claim = "Goal: Mamba's validation loss <= Transformer++'s at every size (Fig. 4)"
    if not pairs:
        return [claim, "no size has both families finished", "-"]
    gaps = {size: losses[("mamba", size)] - losses[("transformer", size)] for size in pairs}
    text = "Mamba minus Transformer++, each at its best peak lr tried: " + ", ".join(
        f"{size} {gap:+.4f}" for size, gap in gaps.items()
    )
    behind = [size for size, gap in gaps.items() if gap > 0]
    if behind:
        return [claim, text, f"not met (Transformer++ lower at {', '.join(behind)})"]
    return [claim, text, "met" if len(pairs) == len(SCALING_SIZES) else "-"]


def _reached_max_steps(run: RunRecord) -> bool:
    done, planned = _steps(run)
    return done is not None and done == planned


@functools.cache
def _run(root: Path, name: str) -> RunRecord | None:
    """The run folder ROOT/NAME, read once per report (``build_reproduction`` clears the cache)."""
    path = root / name
    if not path.is_dir():
        return None
    try:
        return load_run(path)
    except ValueError:
        return None


def _steps(run: RunRecord) -> tuple[int | None, int | None]:
    """(steps trained, the config's max_steps)."""
    steps = [row["step"] for row in run.metrics if isinstance(row.get("step"), int)]
    planned = (run.config.get("trainer") or {}).get("max_steps")
    return (max(steps) if steps else None), planned


def _unsaved_note(run: RunRecord, done: int | None) -> str:
    """', saved at step 35,000' when the run logged steps past its newest checkpoint (a piece that ended
    between two saves: the next piece resumes from that checkpoint and trains those steps again); else ''."""
    folders = list_checkpoints(run.path)
    if done is None or not folders:
        return ""
    saved = step_of(folders[0])
    return f", saved at step {fmt(saved)}" if saved < done else ""


def _steps_text(run: RunRecord) -> str:
    """'8,192 steps of the paper's 204,800'; a run planned shorter than the paper says both; the run's own
    plan when the paper gives none."""
    done, planned = _steps(run)
    paper = PAPER_STEPS.get(run.path.name)
    saved = _unsaved_note(run, done)
    if paper is not None and planned is not None and planned < paper:
        return f"{fmt(done)} of {fmt(planned)} planned steps (the paper's {fmt(paper)}){saved}"
    if paper is not None:
        return f"{fmt(done)} steps of the paper's {fmt(paper)}{saved}"
    return f"{fmt(done)} of {fmt(planned)} steps{saved}"


def _command(run: RunRecord, lr_stretches: bool = False) -> str:
    """The train.py command of the run's last launch (Hydra's recorded overrides; where a key is given twice
    the last value is the one that held). ``lr_stretches`` (constant-lr runs whose lr was changed between
    launches): a comment line per stretch of logged lr above it."""
    path = run.path / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(path.read_text()) if path.is_file() else []
    effective: dict[str, str] = {}
    for override in overrides or []:
        if not override.startswith(("hydra.", "resume=")):
            key = override.split("=", 1)[0]
            effective.pop(key, None)  # re-inserted last, where Hydra applied it
            effective[key] = override
    where = f"hydra.run.dir=outputs/repro/{run.path.name} resume=auto"
    command = f"python train.py {' '.join(effective.values())} {where}"
    phases = _lr_phases(run) if lr_stretches else []
    if len(phases) < 2:
        return command
    stretches = [f"# steps {fmt(first)}-{fmt(last)}: optim.lr={lr:g}" for first, last, lr in phases]
    return "\n".join(stretches + [command])


def _commands(runs: list[RunRecord], evaluation: list[str], lr_stretches: bool = False) -> Paragraph:
    lines = [_command(run, lr_stretches) for run in runs] + evaluation
    return Paragraph("Commands:\n\n```\n" + "\n".join(lines) + "\n```")


def _evaluation_commands(run: RunRecord, task: str, lengths_flag: bool = False) -> list[str]:
    """``python -m evaluation synthetic`` for each evaluated checkpoint of the run (earlier ones by their
    step folder); ``lengths_flag`` adds the max_log2 each evaluation reached."""
    evaluations = _evaluations(run, task)
    lines = []
    for i, entry in enumerate(evaluations):
        step = entry.get("step")
        where = f"/checkpoints/step_{step:08d}" if step is not None and i < len(evaluations) - 1 else ""
        flag = f" max_log2={int(math.log2(max(entry['lengths'])))}" if lengths_flag else ""
        lines.append(f"python -m evaluation synthetic checkpoint=outputs/repro/{run.path.name}{where}{flag}")
    return lines


def _deviations(key: str, extra: list[str] | None = None) -> Paragraph:
    items = DEVIATIONS[key] + (extra or [])
    return Paragraph("Deviations:\n\n" + "\n".join(f"- {item}" for item in items))


def _not_run(title: str, names: list[str]) -> list:
    return [Heading(title), Paragraph(f"Not run yet (no evaluated run folder {', '.join(names)}).")]


INDUCTION_HEADS_RUNS = (
    ("induction_heads", "Mamba", "Mamba"),
    ("induction_heads_trigger5", "Mamba", "Mamba, first trigger at 5"),
    ("induction_heads_attention", "MHA-RoPE", "MHA-RoPE"),
)
"""(run name, the paper's row it compares with, our column's label)."""


def _induction_heads(root: Path, out_dir: Path) -> list:
    title = INDUCTION_HEADS_TITLE
    found = [(_run(root, name), paper, label) for name, paper, label in INDUCTION_HEADS_RUNS]
    found = [
        (run, paper, label) for run, paper, label in found if run and _evaluations(run, "induction_heads")
    ]
    if not found:
        return _not_run(title, [name for name, _, _ in INDUCTION_HEADS_RUNS])
    columns = [  # (header, {length: accuracy}) for each evaluated checkpoint of each run
        (f"ours: {label} ({_at_step(run, entry)})", dict(zip(entry["lengths"], entry["accuracy"])))
        for run, _, label in found
        for entry in _evaluations(run, "induction_heads")
    ]
    papers = list(dict.fromkeys(paper for _, paper, _ in found))
    lengths = sorted({n for _, accuracies in columns for n in accuracies})
    header = ["test length"] + [name for name, _ in columns] + [f"paper: {paper}" for paper in papers]
    rows = []
    for length in lengths:
        log2 = int(math.log2(length))
        published = [INDUCTION_HEADS_PUBLISHED[paper]["accuracy"].get(log2) for paper in papers]
        rows.append(
            [f"2^{log2}"]
            + [fmt(accuracies.get(length), 1) for _, accuracies in columns]
            + [fmt(value, 1) if value is not None else "-" for value in published]
        )
    series = {name: (list(accuracies), list(accuracies.values())) for name, accuracies in columns}
    for paper in papers:
        published = INDUCTION_HEADS_PUBLISHED[paper]["accuracy"]
        series[f"paper: {paper}"] = ([2**k for k in published], list(published.values()))
    blocks = [Heading(title), Table(header, rows)]
    if plot_length_generalization(
        series, "Induction heads: accuracy vs test length", out_dir / "induction_heads.png"
    ):
        blocks.append(Image("induction_heads.png", "induction heads accuracy against test length"))
    runs = [run for run, _, _ in found]
    evaluation = [line for run in runs for line in _evaluation_commands(run, "induction_heads", True)]
    return blocks + [_commands(runs, evaluation), _deviations("induction_heads")]


SELECTIVE_COPYING_RUNS = (
    ("selective_copying", ("Mamba", "S6")),
    ("selective_copying_mamba_s4d", ("Mamba", "S4")),
    ("selective_copying_s4d", ("No gate", "S4")),
)
"""(run name, the Table 1 row (arch, layer) it compares with)."""


def _selective_copying(root: Path, out_dir: Path) -> list:
    title = SELECTIVE_COPYING_TITLE
    pairs = SELECTIVE_COPYING_RUNS
    found = [(_run(root, name), row) for name, row in pairs]
    found = [
        (run, row) for run, row in found if run and "selective_copying" in run.results.get("synthetic", {})
    ]
    if not found:
        return _not_run(title, [name for name, _ in pairs])
    rows = []
    for run, (arch, layer) in found:
        for entry in _evaluations(run, "selective_copying"):
            rows.append(
                [
                    run.path.name,
                    f"{arch} / {layer}",
                    _at_step(run, entry),
                    fmt(entry["accuracy"][-1], 1),
                    fmt(SELECTIVE_COPYING_PUBLISHED[(arch, layer)], 1),
                ]
            )
    table = Table(["run", "Table 1 row (arch / layer)", "steps", "ours %", "paper %"], rows)
    evaluation = [line for run, _ in found for line in _evaluation_commands(run, "selective_copying")]
    at_other_lr = []
    for run, _ in found:
        phases = _lr_phases(run)
        if any(not math.isclose(lr, PAPER_SELECTIVE_COPYING_LR) for _, _, lr in phases):
            steps = ", then ".join(f"{lr:g} at steps {fmt(first)}-{fmt(last)}" for first, last, lr in phases)
            at_other_lr.append(f"{run.path.name}: lr {steps}")
    other_lr = (
        [
            f"Not the paper's lr 1e-4 throughout ({'; '.join(at_other_lr)}; the logged lr of each step). "
            "At 1e-4 our Mamba's loss stays on its ln 14 plateau for more than 7,700 steps, and the paper's "
            "400K steps do not fit our GPU time."
        ]
        if at_other_lr
        else []
    )
    deviations = _deviations("selective_copying", other_lr)
    commands = _commands([run for run, _ in found], evaluation, lr_stretches=True)
    return [Heading(title), table, commands, deviations]


def _lr_phases(run: RunRecord) -> list[tuple[int, int, float]]:
    """(first logged step, last logged step, lr) of each stretch of constant lr in metrics.jsonl; a run
    without logged lrs gives its config's lr over its steps."""
    steps, lrs = run.series("lr")
    if not steps:
        lr = (run.config.get("optim") or {}).get("lr")
        done, _ = _steps(run)
        return [] if lr is None else [(1, done or 0, float(lr))]
    phases: list[list] = []
    for step, lr in zip(steps, lrs):
        if phases and math.isclose(phases[-1][2], lr):
            phases[-1][1] = int(step)
        else:
            phases.append([int(step), int(step), lr])
    return [tuple(phase) for phase in phases]


LRA_RUNS = {
    "lra_s4_listops": "listops",
    "lra_mamba_listops": "listops",
    "lra_s4_pathfinder": "pathfinder",
    "lra_mamba_pathfinder": "pathfinder",
    "lra_mamba_pathfinder_mean": "pathfinder",
}
"""Run name: its LRA task."""


def _validation(run: RunRecord) -> tuple[int, float] | None:
    """(step, accuracy %) of the run's latest logged validation accuracy."""
    steps, accuracies = run.series("val_accuracy")
    return (int(steps[-1]), 100 * accuracies[-1]) if steps else None


def _best_validation(run: RunRecord) -> tuple[int, float] | None:
    """(step, accuracy %) of the run's highest logged validation accuracy (the earliest of equals)."""
    steps, accuracies = run.series("val_accuracy")
    if not steps:
        return None
    best = max(range(len(steps)), key=lambda i: (accuracies[i], -i))
    return int(steps[best]), 100 * accuracies[best]


def _validation_text(run: RunRecord) -> str:
    """'41.0 (step 35,000; best 54.1 at step 20,000)': the latest logged validation accuracy, and the best
    one when an earlier evaluation scored higher."""
    validation, best = _validation(run), _best_validation(run)
    if validation is None:
        return "-"
    text = f"{validation[1]:.1f} (step {fmt(validation[0])}"
    if best[1] > validation[1]:
        text += f"; best {best[1]:.1f} at step {fmt(best[0])}"
    return text + ")"


def _lra_source(run: RunRecord, entry: dict | None) -> str:
    """Where the data came from: the evaluation's record (its resolved source), else the training config (no
    archive: generated)."""
    data = run.config.get("data") or {}
    if entry:
        generated = entry.get("generated") or entry.get("source") == "generate"
    else:
        generated = data.get("source") == "generate" or not data.get("archive_dir")
    return "generated (not LRA's release)" if generated else "lra_release"


def _lra_status(root: Path) -> list[str]:
    claim = f"LRA ListOps, S4 setting: >= {LISTOPS_BAR:.2f} (S4: 59.60)"
    run = _run(root, "lra_s4_listops")
    entry, at_best = _lra_evaluations(run, "listops") if run else (None, None)
    entry = entry or {}
    score = entry.get("accuracy")
    if score is not None and not _mid_run(run, entry):
        text = f"{score:.2f} (test, last checkpoint)"
        state = "met" if score >= LISTOPS_BAR else "not met"
        if at_best is not None:
            best = at_best["accuracy"]
            text += f"; {best:.2f} at the best validation (step {fmt(at_best['step'])})"
            if score < LISTOPS_BAR <= best:
                state = "met at the best-validation checkpoint, not at the last"
        return [claim, text, state]
    if run is None or not run.metrics:
        return [claim, "not run", "-"]
    done, planned = _steps(run)
    text = f"in training: {fmt(done)} of {fmt(planned)} steps{_unsaved_note(run, done)}"
    validation, best = _validation(run), _best_validation(run)
    if validation is not None:
        text += f", validation {validation[1]:.1f}% at step {fmt(validation[0])}"
        if best[1] > validation[1]:
            text += f" (best {best[1]:.1f}% at step {fmt(best[0])})"
    if score is not None:
        text += f", test {score:.2f}% at step {fmt(entry['step'])} (not the result: the lr had not decayed)"
    return [claim, text, "-"]


def _lra_evaluations(run: RunRecord, task: str) -> tuple[dict | None, dict | None]:
    """(the test evaluation of the run's newest evaluated checkpoint, that of its best-validation checkpoint
    when that is another one) from eval/lra.json; None where there is none."""
    evaluations = checkpoint_evaluations((run.results.get("lra") or {}).get(task))
    if not evaluations:
        return None, None
    *earlier, newest = evaluations
    best = _best_validation(run)
    at_best = next((e for e in earlier if best is not None and e.get("step") == best[0]), None)
    return newest, at_best


def _lra_test_text(run: RunRecord, entry: dict | None, at_best: dict | None = None) -> str:
    """'58.10', or '51.20 at step 35,000 (mid-run)' for a checkpoint before the last, or 'in training'
    ('trained, not tested yet' once it reached its max_steps); with the best-validation checkpoint's test
    accuracy beside it when that one was evaluated too."""
    if entry is None:
        return "trained, not tested yet" if _reached_max_steps(run) else "in training"
    text = fmt(entry.get("accuracy"), 2)
    if _mid_run(run, entry):
        text = f"{text} at step {fmt(entry['step'])} (mid-run)"
    if at_best is not None:
        text += f"; {fmt(at_best.get('accuracy'), 2)} at the best validation (step {fmt(at_best['step'])})"
    return text


def _mid_run(run: RunRecord, entry: dict) -> bool:
    """An LRA evaluation of a checkpoint before the run's last step (its lr schedule not yet decayed)."""
    planned = (run.config.get("trainer") or {}).get("max_steps")
    step = entry.get("step")
    return step is not None and planned is not None and step < planned


def _lra(root: Path, out_dir: Path) -> list:
    title = LRA_TITLE
    found = [
        (run, task) for run, task in ((_run(root, n), t) for n, t in LRA_RUNS.items()) if run and run.metrics
    ]
    if not found:
        return _not_run(title, list(LRA_RUNS))
    rows = []
    for run, task in found:
        for tested_task in run.results.get("lra") or [task]:
            entry, at_best = _lra_evaluations(run, tested_task)
            rows.append(
                [
                    run.path.name,
                    tested_task,
                    _steps_text(run),
                    _lra_source(run, entry),
                    _validation_text(run),
                    _lra_test_text(run, entry, at_best),
                    fmt(LRA_PUBLISHED["S4 (updated)"].get(tested_task), 2),
                    fmt(LRA_PUBLISHED["S4D-LegS"].get(tested_task), 2),
                ]
            )
    header = [
        "run",
        "task",
        "steps",
        "data",
        "validation % (step)",
        "ours % (test)",
        "paper: S4",
        "paper: S4D-LegS",
    ]
    runs = [run for run, _ in found]
    evaluation = [
        f"python -m evaluation lra outputs/repro/{run.path.name}" for run in runs if run.results.get("lra")
    ]
    blocks = [Heading(title), Table(header, rows)]
    series = {}
    for run, _ in found:
        steps, accuracies = run.series("val_accuracy")
        series[f"{run.path.name} (validation)"] = (steps, [100 * a for a in accuracies])
    tasks = sorted({task for _, task in found})
    references = {f"paper: S4, {task} (test)": LRA_PUBLISHED["S4 (updated)"][task] for task in tasks}
    plot_title = "LRA: validation accuracy during training"
    if plot_accuracy_curves(series, references, plot_title, out_dir / "lra.png"):
        blocks.append(Image("lra.png", "LRA validation accuracy against training step"))
    return blocks + [_commands(runs, evaluation), _deviations("lra", _lra_deviations(found))]


def _lra_deviations(found: list[tuple[RunRecord, str]]) -> list[str]:
    """The deviations that depend on which LRA runs exist: step budgets, generated Pathfinder, Mamba rows."""
    lines = []
    for run, _ in found:
        _, planned = _steps(run)
        paper = PAPER_STEPS.get(run.path.name)
        if paper and planned and planned < paper:
            lines.append(
                f"{run.path.name}: {fmt(planned)} planned steps with the lr schedule laid over them, "
                f"not S4's {fmt(paper)} (GPU time)."
            )
    if any(task == "pathfinder" and "generated" in _lra_source(run, None) for run, task in found):
        lines.append(
            "Pathfinder-32 from our implementation of LRA's generator (its contrast jitter and paddle "
            "settings) when the lra_release images are absent: a different task from LRA's, marked "
            "'generated' in the data column."
        )
    if any("mamba" in run.path.name for run, _ in found):
        lines.append(
            "The Mamba paper reports no LRA numbers: the Mamba rows (experiment=lra/mamba/<task>_v3) train "
            "in the recipe of our S4 run of the task (data, batch, optimizer, schedule, depth, pooling) with "
            "the Mamba mixer read in both directions, at a width that gives about the S4 model's parameter "
            "count (ListOps 525K against 534K, Pathfinder 1.24M against 1.19M), for a quarter of the S4 "
            "run's steps (on ListOps about its GPU time: the Mamba step measured 2.3x S4's; on Pathfinder "
            "less: 22.9 Mamba steps/s alone on the H200, S4 19.5 beside another lane), and "
            "are set beside S4's published row. "
            "The Mamba rows use Mamba's own pre-norm LayerNorm block, and lr 0.002 on ListOps: in S4's "
            "ListOps recipe (post-norm BatchNorm, lr 0.01) the Mamba model stayed at the uniform loss for "
            "5,444 steps."
        )
    if any(run.path.name == "lra_mamba_pathfinder_mean" for run, _ in found):
        lines.append(
            "lra_mamba_pathfinder_mean: the Mamba Pathfinder row with the mean over positions pooled (S4's "
            "newer Pathfinder config, decoder mode pool) instead of the last position (S4's v3 recipe, "
            "lra_mamba_pathfinder): pooled at the last position, the Mamba model at initialisation gives "
            "positions 0-255 1.7e-4 of the gradient that positions 768-1023 get (S4D: 0.11; "
            "benchmarks/input_sensitivity.py)."
        )
    return lines


def _equal_step_comparison(runs: dict[tuple[str, str], RunRecord]) -> str:
    """One sentence per size: both families' validation loss at the last step both evaluated."""
    sentences = []
    for size in SCALING_SIZES:
        mamba, transformer = runs.get(("mamba", size)), runs.get(("transformer", size))
        if mamba is None or transformer is None:
            continue
        m = dict(zip(*mamba.series("val_loss")))
        t = dict(zip(*transformer.series("val_loss")))
        common = sorted(set(m) & set(t))
        if not common:
            continue
        step = common[-1]
        better = "Mamba" if m[step] <= t[step] else "Transformer++"
        lrs = (_peak_lr(mamba), _peak_lr(transformer))
        at = [f" (peak lr {lr:g})" if lrs[0] != lrs[1] and lr is not None else "" for lr in lrs]
        sentences.append(
            f"Size {size} at step {int(step)} (same tokens, same batches): Mamba {m[step]:.4f}{at[0]}, "
            f"Transformer++ {t[step]:.4f}{at[1]}; {better} is lower by {abs(m[step] - t[step]):.4f} nats."
        )
    return " ".join(sentences) or "No size has both families evaluated at a common step yet."


def _model_numbers(run: RunRecord) -> tuple[int, float]:
    """(parameters, training FLOPs per token) of a run's model, built on the meta device from its config."""
    values = dict(run.config.get("model") or {})
    tokenizer = run.path / "tokenizer.json"
    if tokenizer.is_file():
        values["vocab_size"] = Tokenizer.from_file(str(tokenizer)).get_vocab_size()
    with torch.device("meta"):
        model = build_model_from_dict(values)
    seqlen = int((run.config.get("data") or {}).get("seqlen", 1024))
    return sum(p.numel() for p in model.parameters()), model_flops_per_token(model, seqlen)


def _scaling_candidates(root: Path, family: str, size: str) -> list[RunRecord]:
    """The evaluated runs of one family and size: scaling_F_S (peak lr 2e-3) first, then its lr-sweep runs
    scaling_F_S_lr<LR> (benchmarks/reproduce.py's scaling_lr lane)."""
    sweep = sorted(path.name for path in root.glob(f"scaling_{family}_{size}_lr*") if path.is_dir())
    runs = [_run(root, name) for name in [f"scaling_{family}_{size}", *sweep]]
    return [run for run in runs if run is not None and run.series("val_loss")[0]]


def _final_loss_text(run: RunRecord) -> str:
    """The last validation loss, with '(step N of M)' while the run is unfinished."""
    done, planned = _steps(run)
    unfinished = "" if _reached_max_steps(run) else f" (step {done} of {planned})"
    return fmt(run.series("val_loss")[1][-1], 4) + unfinished


def _peak_lr(run: RunRecord) -> float | None:
    lr = (run.config.get("optim") or {}).get("lr")
    return float(lr) if isinstance(lr, (int, float)) else None


def _chosen_run(candidates: list[RunRecord]) -> RunRecord:
    """The run a size's row shows: the finished candidate with the lowest final validation loss; while none
    has finished, the first (the base run when it exists)."""
    finished = [run for run in candidates if _reached_max_steps(run)]
    return min(finished, key=lambda run: run.series("val_loss")[1][-1]) if finished else candidates[0]


def _lr_sweep_table(candidates: dict, chosen: dict) -> Table | None:
    """Final validation loss of every peak lr tried, for each family and size trained at more than one."""
    swept = {key: runs for key, runs in candidates.items() if len(runs) > 1}
    if not swept:
        return None
    lrs = sorted({_peak_lr(run) for runs in swept.values() for run in runs} - {None})
    rows = []
    for (family, size), runs in swept.items():
        by_lr = {_peak_lr(run): run for run in runs}
        row = [size, SCALING_LABELS[family]]
        for lr in lrs:
            run = by_lr.get(lr)
            mark = " (shown)" if run is chosen[(family, size)] else ""
            row.append("-" if run is None else _final_loss_text(run) + mark)
        rows.append(row)
    return Table(["size", "family", *(f"lr {lr:g}" for lr in lrs)], rows)


SCALING_COLUMNS = ("params", "peak lr", "tokens", "FLOPs", "val loss")


def _previous_scaling_cells(previous: PreviousReport) -> dict[tuple[str, str], list[str]]:
    """(family, size) -> that family's cells (SCALING_COLUMNS) in the previous report's scaling table, for
    the pairs it shows a result of ('not run' left out); a column the older table lacked reads '-'."""
    text = previous.sections.get(SCALING_TITLE, "")
    lines = [line for line in text.splitlines() if line.startswith("|")]
    if not lines or _cells(lines[0])[0] != "size":
        return {}
    columns, found = _cells(lines[0]), {}
    for line in lines[2:]:
        cells = dict(zip(columns, _cells(line)))
        for family in SCALING_FAMILIES:
            values = [cells.get(f"{SCALING_LABELS[family]}: {column}", "-") for column in SCALING_COLUMNS]
            if values[-1] not in ("-", "not run"):
                found[(family, cells.get("size"))] = values
    return found


def _number(cell: str) -> float | None:
    """The number a table cell holds ('2.0655', '3.99e+16'); None for an unfinished run's loss ('2.1 (step
    5 of 9)'), '-' and words."""
    try:
        return float(cell)
    except ValueError:
        return None


def _scaling(root: Path, out_dir: Path, previous: PreviousReport) -> list:
    title = SCALING_TITLE
    candidates = {(f, s): _scaling_candidates(root, f, s) for s in SCALING_SIZES for f in SCALING_FAMILIES}
    candidates = {key: runs for key, runs in candidates.items() if runs}
    if not candidates:
        return _not_run(title, SCALING_RUNS)
    runs = {key: _chosen_run(found) for key, found in candidates.items()}
    published = _previous_scaling_cells(previous)
    rows, curves, carried = [], {}, {}
    for size in SCALING_SIZES:
        row = [size]
        for family in SCALING_FAMILIES:
            run = runs.get((family, size))
            if run is None and (family, size) in published:  # its run folders are gone: as published
                cells = published[(family, size)]
                row += cells
                loss, flops = _number(cells[-1]), _number(cells[SCALING_COLUMNS.index("FLOPs")])
                if loss is not None and flops is not None:
                    carried[(family, size)] = (flops, loss)
                continue
            if run is None:
                row += ["-", "-", "-", "-", "not run"]
                continue
            params, flops_per_token = _model_numbers(run)
            tokens, losses = run.series("val_loss", "tokens")
            curves[(family, size)] = ([t * flops_per_token for t in tokens], losses)
            lr = _peak_lr(run)
            row += [
                f"{params / 1e6:.1f}M",
                "-" if lr is None else f"{lr:g}",
                f"{tokens[-1] / 1e6:.1f}M",
                f"{tokens[-1] * flops_per_token:.2e}",
                _final_loss_text(run),
            ]
        rows.append(row)
    header = ["size"] + [f"{SCALING_LABELS[f]}: {c}" for f in SCALING_FAMILIES for c in SCALING_COLUMNS]
    blocks = [Heading(title), Table(header, rows), Paragraph(_equal_step_comparison(runs))]
    if carried:
        names = ", ".join(f"{SCALING_LABELS[f]} {size}" for f, size in carried)
        blocks.append(Paragraph(f"Carried from the previous report, their run folders gone: {names}."))
    sweep = _lr_sweep_table(candidates, runs)
    if sweep is not None:
        blocks += [
            Paragraph("Final validation loss at each peak lr tried (the table above shows the lowest):"),
            sweep,
        ]
    if plot_loss_against_flops(curves, out_dir / "scaling.png", carried):
        blocks.append(Image("scaling.png", "validation loss against training FLOPs"))
    if carried:
        blocks.append(
            Paragraph(
                "The plot shows a carried run's final (FLOPs, loss) point from the table (a hollow "
                "marker), not its curve."
            )
        )
    evaluation = ["python -m evaluation report mode=reproduction root=outputs/repro out=docs"]
    every_run = [run for found in candidates.values() for run in found]
    return blocks + [_commands(every_run, evaluation), _deviations("scaling")]
