"""Run the paper-reproduction experiments in resumable pieces on one GPU (docs/reproduction.md).

    python benchmarks/reproduce.py --root outputs/repro --minutes 9                 # every lane, one piece
    python benchmarks/reproduce.py --root outputs/repro --minutes 9 --lanes synthetic,lra
    python benchmarks/reproduce.py --root outputs/repro --minutes 9 --lanes scaling_lr --runs NAME,NAME
    python benchmarks/reproduce.py --root outputs/repro --evaluate induction_heads  # evaluation only
    python benchmarks/reproduce.py --list

A run is ``python train.py <its overrides> hydra.run.dir=ROOT/NAME resume=auto``. Lanes run side by side
(small models are launch-bound, so several share one GPU well); the runs of one lane run one after another.
At the deadline every running training gets SIGTERM, saves a checkpoint and exits with 143; the next piece
continues it from ROOT/NAME. A training that exits with 0 (or whose newest checkpoint is at its max_steps,
whatever its exit code) has reached its max_steps and is recorded as done in ROOT/status.json; the next
pieces skip it. Drivers of different lanes, or given disjoint ``--runs`` of one lane, may share ROOT (each
records only its own runs there). ``--evaluate NAME,...`` runs the evaluation command of those runs on
their latest checkpoint (synthetic length generalisation, LRA test accuracy, there of the best-validation
checkpoint too), writing ROOT/NAME/eval/*.json. The last lines printed are a table: run, step, last
losses, state.

``--pack FILE.tgz`` writes ROOT as one archive to carry to the next machine: every run's config, metrics,
logs and evaluations, and the latest checkpoint (and the best validation's, trainer.keep_best) of each run
whose checkpoints are at most --pack-max-mb (default 16 MiB, weights and AdamW state: the synthetic and LRA
models; a run that is done and evaluated carries no checkpoint). The scaling models' weights stay behind: a
finished scaling run travels as its records, an unfinished one is left out (it restarts from step 0 on the
next machine, and its partial curve would read as a result). Started with
``setsid`` the driver outlives the shell that launched it; ``--pack`` before the machine is handed back.

Constant-lr runs (the synthetic tasks, as the paper trains them) keep the paper's max_steps: a piece can stop
anywhere and the report says how many steps were run. Runs with a decaying schedule (LRA, scaling) have a
fixed budget and are reported only when done.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a plain checkout, the package not installed
from mamba_lm.files import atomic_write_json  # noqa: E402
from mamba_lm.trainer import RunFolder, best_checkpoint, read_metrics  # noqa: E402
from mamba_lm.trainer.run_folder import step_of  # noqa: E402


@dataclass(frozen=True)
class Run:
    """One training run: its train.py overrides and the evaluation command for its run folder."""

    name: str
    overrides: tuple[str, ...]
    evaluate: tuple[str, ...] = ()  # python -m evaluation <these> (checkpoint= is added)
    later: tuple[int, tuple[str, ...]] | None = None
    """(step, overrides): once the run's newest checkpoint is at ``step`` or past it, the pieces train
    with these overrides appended (e.g. a lower lr after a plateau); metrics.jsonl records every step's lr."""

    def overrides_at(self, step: int | None) -> tuple[str, ...]:
        """The overrides of a piece that resumes from ``step`` (None: a fresh run)."""
        if self.later is not None and step is not None and step >= self.later[0]:
            return (*self.overrides, *self.later[1])
        return self.overrides


@dataclass(frozen=True)
class Lane:
    """Runs that execute one after another (e.g. GPU-heavy runs that should not share the GPU)."""

    name: str
    runs: tuple[Run, ...] = field(default_factory=tuple)


COMMON = ("logger=none", "trainer.progress_bar=false")
SYNTHETIC_EVAL = ("synthetic", "max_log2=20")
# Attention is quadratic in the test length: the paper tested it to 2^14 (out of memory beyond); 2^16 here.
ATTENTION_EVAL = ("synthetic", "max_log2=16")


def _scaling_run(family: str, size: str, lr: str | None = None) -> Run:
    """scaling_{family}_{size} (the experiment's peak lr, 2e-3), or its lr-sweep run ..._lr{LR}."""
    name, overrides = f"scaling_{family}_{size}", (f"experiment=scaling/{family}_{size}",)
    if lr is not None:
        name, overrides = f"{name}_lr{lr}", (*overrides, f"optim.lr={lr}")
    return Run(name, overrides, ("perplexity",))


def _scaling_runs() -> tuple[Run, ...]:
    """Mamba and Transformer++ at three sizes on the code corpus, the same data order and token budget."""
    return tuple(
        _scaling_run(family, size) for size in ("s", "m", "l") for family in ("mamba", "transformer")
    )


# One peak lr (2e-3) for every size left Transformer++ l (2.228) behind Transformer++ m (2.175) and Mamba s
# 0.45 nats behind Transformer++ s: the per-size lr is the first suspect. The sweep trains sizes s and m at
# these peak lrs beside the base runs' 2e-3; the report shows each family's lowest final validation loss.
SCALING_LR_SWEEP = ("1e-3", "4e-3", "8e-3")
# Runs beyond the sweep, each where a family's lowest loss sat at the sweep's edge or a size was not swept.
# Mamba s was lowest at the sweep's highest lr (2.4055 at 8e-3; 2.4341 at 1.6e-2: the optimum is near 8e-3).
# Transformer++ m was lowest at the sweep's lowest lr (2.1203 at 1e-3, 2.1763 at 2e-3): one halving more.
# The best lr fell with size for both families (Mamba 8e-3 at s, 4e-3 at m; Transformer++ 2e-3, then 1e-3),
# so size l, trained at 2e-3 only, is compared at Mamba 4e-3 and Transformer++ 1e-3 and 5e-4 too.
SCALING_LR_EXTRA = (
    ("mamba", "s", "1.6e-2"),
    ("transformer", "m", "5e-4"),
    ("transformer", "l", "1e-3"),
    ("mamba", "l", "4e-3"),
    ("transformer", "l", "5e-4"),
)


def _scaling_lr_runs() -> tuple[Run, ...]:
    """The lr sweep: the base runs of sizes s and m at each of SCALING_LR_SWEEP's peak lrs, then the runs
    of SCALING_LR_EXTRA."""

    def sweep(size: str) -> tuple[Run, ...]:
        return tuple(
            _scaling_run(family, size, lr) for lr in SCALING_LR_SWEEP for family in ("mamba", "transformer")
        )

    extra = tuple(_scaling_run(family, size, lr) for family, size, lr in SCALING_LR_EXTRA)
    return (*sweep("s"), *sweep("m"), *extra)


def _single(
    name: str,
    experiment: str,
    evaluate: tuple[str, ...],
    *overrides: str,
    later: tuple[int, tuple[str, ...]] | None = None,
) -> Lane:
    """A lane of one run."""
    return Lane(name, (Run(name, (f"experiment={experiment}", *overrides), evaluate, later),))


# The synthetic models are launch-bound (a few hundred tiny kernels per step): CUDA graphs replay the step.
GRAPHED = "trainer.cuda_graph=true"
# Selective copying at the paper's lr 1e-4 sits on a loss plateau (ln 14) for more than 7,700 steps at 4096
# tokens; CPU probes leave it ~3x sooner at 1e-3. The paper's 400K steps do not fit a GPU session, so both
# selective-copying runs start at 1e-3 (the report lists the lr of every step range as a deviation).
SELECTIVE_COPYING_LR = "optim.lr=1e-3"
# At 1e-3 the Mamba run left the plateau at step ~11,500 (loss 0.09 at step 17,000, 93% at 21,083), then
# swung (loss 0.04-1.4, gradient norms up to 54, 78% at 27,032): from its step-27,032 checkpoint it trains at
# the paper's 1e-4 (a resumed run keeps its checkpoint's lr plan unless told to re-plan).
SELECTIVE_COPYING_LATER = (27_032, ("optim.lr=1e-4", "optim.replan_schedule=true"))

# LRA step budgets (GPU time), the cosine laid over them; the report lists each as a deviation. S4's
# Pathfinder runs 200 epochs (500,000 steps of 64): 20 epochs here for S4. The Mamba rows train in the recipe
# of the S4 run beside them with Mamba's own block, at its parameter count (experiment=lra/mamba/<task>_v3).
PATHFINDER_BUDGET = "trainer.max_steps=50000"
# The Mamba LRA models get a quarter of the S4 run's steps: ListOps 19,200 (10 epochs), Pathfinder 12,500
# (5 epochs of the 20 above). On ListOps that is about the S4 run's GPU time (the Mamba step measured 2.3x
# S4's on the H200: 83 ms against 36, launch-bound: 48 ms of it GPU kernels; benchmarks/lra_mamba_probe.py);
# on Pathfinder less (22.9 Mamba steps/s alone, S4 19.5 beside another lane: RESULTS.md, twelfth session).
MAMBA_LISTOPS_BUDGET = "trainer.max_steps=19200"
MAMBA_PATHFINDER_BUDGET = "trainer.max_steps=12500"
# The Mamba Pathfinder run pooled at the last position (S4's v3 recipe) stayed at chance (loss ln 2,
# validation 54.09% = the majority class) for 9,346 steps at lr 0.004 and a probe's 4,025 at 0.001: at
# initialisation its positions 0-255 get 1.7e-4 of the gradient that positions 768-1023 get (S4D: 0.11;
# benchmarks/input_sensitivity.py). The second Mamba arm pools the mean over positions, as S4's newer
# Pathfinder config (decoder mode pool; experiment=lra/s4/pathfinder) does. It stayed at chance too
# (validation 54.09% at every validation to 12,500; its output's input gradient fell from 6.6e-4 per position
# at initialisation to 1e-7 at step 2,500: RESULTS.md, thirteenth session).
MAMBA_PATHFINDER_MEAN_POOLING = "model.pooling=mean"

LANES = (
    _single("induction_heads", "synthetic/induction_heads", SYNTHETIC_EVAL, GRAPHED),
    _single("induction_heads_attention", "synthetic/induction_heads_attention", ATTENTION_EVAL, GRAPHED),
    _single(
        "selective_copying",
        "synthetic/selective_copying",
        ("synthetic",),
        GRAPHED,
        SELECTIVE_COPYING_LR,
        later=SELECTIVE_COPYING_LATER,
    ),
    _single(
        "selective_copying_s4d",
        "synthetic/selective_copying_s4d",
        ("synthetic",),
        GRAPHED,
        SELECTIVE_COPYING_LR,
    ),
    # Table 1's "Mamba / S4" row; eager, as the S4D run trained (its launch: trainer.cuda_graph=false).
    _single(
        "selective_copying_mamba_s4d",
        "synthetic/selective_copying_mamba_s4d",
        ("synthetic",),
        SELECTIVE_COPYING_LR,
    ),
    _single("lra_s4_listops", "lra/s4/listops_v3", ("lra",)),
    _single("lra_s4_pathfinder", "lra/s4/pathfinder_v3", ("lra",), PATHFINDER_BUDGET),
    _single("lra_mamba_listops", "lra/mamba/listops_v3", ("lra",), MAMBA_LISTOPS_BUDGET),
    _single("lra_mamba_pathfinder", "lra/mamba/pathfinder_v3", ("lra",), MAMBA_PATHFINDER_BUDGET),
    _single(
        "lra_mamba_pathfinder_mean",
        "lra/mamba/pathfinder_v3",
        ("lra",),
        MAMBA_PATHFINDER_BUDGET,
        MAMBA_PATHFINDER_MEAN_POOLING,
    ),
    Lane("scaling", _scaling_runs()),
    Lane("scaling_lr", _scaling_lr_runs()),
)


def all_runs() -> dict[str, Run]:
    return {run.name: run for lane in LANES for run in lane.runs}


def read_status(root: Path) -> dict:
    path = root / "status.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_status(root: Path, entries: dict) -> None:
    """Merge ``entries`` (run name -> state) into ROOT/status.json. Drivers of other lanes may be writing
    theirs at the same time: the read-merge-write holds a lock, and the other runs' states are kept."""
    with open(root / ".status.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        status = read_status(root)
        status.update(entries)
        atomic_write_json(root / "status.json", status, sort_keys=True)


EXTRA_OVERRIDES: list[str] = []  # --override: appended to every run (e.g. a CPU smoke test)


def newest_step(folder: Path) -> int | None:
    """The step of the run folder's newest checkpoint (None: no checkpoint yet)."""
    newest = RunFolder(folder).step_folders()
    return step_of(newest[0]) if newest else None


def reached_max_steps(run_dir: Path) -> bool:
    """Whether the run's newest checkpoint is at its config's trainer.max_steps: its training is over,
    whatever its process's exit code said (a deadline's SIGTERM can arrive while a finished run exits)."""
    if not (run_dir / "config.yaml").is_file():
        return False
    max_steps = (RunFolder(run_dir).read_config().get("trainer") or {}).get("max_steps")
    step = newest_step(run_dir)
    return isinstance(max_steps, int) and step is not None and step >= max_steps


def run_state(run_dir: Path, code: int) -> str:
    """status.json's word for a training process that ended with ``code``: done (it exits 0 at its
    max_steps), stopped (143: SIGTERM at the deadline, a checkpoint saved) or 'exit CODE' (a crash)."""
    if code == 0 or reached_max_steps(run_dir):
        return "done"
    return "stopped" if code == 143 else f"exit {code}"


def reconcile_status(root: Path) -> list[str]:
    """Record as done every run under ``root`` whose status says otherwise but whose newest checkpoint
    reached its max_steps (an earlier driver's status from before ``run_state`` looked); returns them."""
    status = read_status(root)
    finished = [name for name, state in status.items() if state != "done" and reached_max_steps(root / name)]
    if finished:
        write_status(root, dict.fromkeys(finished, "done"))
    return finished


def train_command(run: Run, root: Path) -> list[str]:
    where = (f"hydra.run.dir={root / run.name}", "resume=auto")
    overrides = run.overrides_at(newest_step(root / run.name))
    return [sys.executable, "train.py", *overrides, *COMMON, *where, *EXTRA_OVERRIDES]


def evaluate_command(run: Run, root: Path) -> list[str]:
    positional = [f"checkpoint={root / run.name}"] if run.evaluate[0] != "lra" else [str(root / run.name)]
    return [sys.executable, "-m", "evaluation", run.evaluate[0], *positional, *run.evaluate[1:]]


class LaneWorker:
    """Starts the lane's next unfinished run, and the one after when it finishes, until the deadline."""

    def __init__(self, lane: Lane, root: Path, status: dict):
        self.lane, self.root, self.status = lane, root, status
        self.pending = [run for run in lane.runs if status.get(run.name) != "done"]
        self.process: subprocess.Popen | None = None
        self.current: Run | None = None

    def poll(self) -> None:
        if self.process is not None:
            code = self.process.poll()
            if code is None:
                return
            self.status[self.current.name] = run_state(self.root / self.current.name, code)
            self.process = None
            if self.status[self.current.name] != "done":  # a crash: stop the lane, the log says why
                self.pending = []
                return
        if self.pending:
            self.current = self.pending.pop(0)
            log = open(self.root / f"{self.current.name}.log", "a")  # noqa: SIM115 (the child owns it)
            print(f"start {self.current.name}", flush=True)
            self.process = subprocess.Popen(
                train_command(self.current, self.root), cwd=REPO, stdout=log, stderr=subprocess.STDOUT
            )

    def stop(self, grace_s: float) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.status[self.current.name] = run_state(self.root / self.current.name, code)
        self.process = None


def only_runs(lanes: list[Lane], names: set[str]) -> list[Lane]:
    """The lanes with only the named runs (all of them when ``names`` is empty), in their lane's order.
    Drivers given disjoint runs of one lane train them side by side: each records only its own runs."""
    if not names:
        return lanes
    unknown = names - {run.name for lane in lanes for run in lane.runs}
    if unknown:
        raise SystemExit(f"runs {sorted(unknown)} are in none of the selected lanes")
    chosen = [Lane(lane.name, tuple(run for run in lane.runs if run.name in names)) for lane in lanes]
    return [lane for lane in chosen if lane.runs]


def train_pieces(lanes: list[Lane], root: Path, minutes: float, grace_s: float = 90.0) -> None:
    status = read_status(root)
    workers = [LaneWorker(lane, root, status) for lane in lanes]
    own = {run.name for lane in lanes for run in lane.runs}

    def record() -> None:
        write_status(root, {name: state for name, state in status.items() if name in own})

    deadline = time.monotonic() + 60 * minutes
    while time.monotonic() < deadline:
        for worker in workers:
            worker.poll()
        record()
        if all(worker.process is None and not worker.pending for worker in workers):
            break
        time.sleep(2)
    for worker in workers:
        worker.stop(grace_s)
    record()


def evaluate(names: list[str], root: Path, timeout_s: float) -> None:
    """Run the evaluation command of each named run. An LRA run (decaying lr: its result is its last
    checkpoint's) is evaluated only once the driver has recorded it as done."""
    runs, status = all_runs(), read_status(root)
    for name in names:
        if runs[name].evaluate[0] == "lra" and status.get(name) != "done":
            print(f"evaluate {name}: skipped, its training is not done ({status.get(name, 'not started')})")
            continue
        command = evaluate_command(runs[name], root)
        print("evaluate", " ".join(command[1:]), flush=True)
        with open(root / f"{name}.eval.log", "a") as log:
            try:
                subprocess.run(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s)
            except subprocess.TimeoutExpired:
                print(f"  {name}: evaluation passed {timeout_s:.0f} s, stopped", flush=True)


def summary(root: Path) -> str:
    status = read_status(root)
    header = f"{'run':28s} {'step':>8s} {'train/loss':>10s} {'eval/loss':>9s} {'eval/acc':>8s} {'tok/s':>9s}"
    lines = [header + "  state"]
    for name in all_runs():
        records = read_metrics(root / name / "metrics.jsonl")
        if not records:
            continue

        def last(key, records=records):
            values = [r[key] for r in records if key in r]
            return f"{values[-1]:.4g}" if values else "-"

        step = max(r.get("step", 0) for r in records)
        state = status.get(name, "started")
        lines.append(
            f"{name:28s} {step:8d} {last('loss'):>10s} {last('val_loss'):>9s} "
            f"{last('val_accuracy'):>8s} {last('tokens_per_s'):>9s}  {state}"
        )
    return "\n".join(lines)


# The largest checkpoint (weights and AdamW state, fp32) a pack carries by default: the LRA models (S4 and
# Mamba: ListOps 6 MiB, Pathfinder 14 MiB) and the synthetic ones fit; a pack's part must also come back from
# the GPU machine, 16 MiB a file (the window scripts split larger packs).
PACK_MAX_MB = 16.0


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def carried_checkpoints(run_dir: Path, done: bool = False) -> list[Path]:
    """The checkpoints a run needs on the next machine: its newest, and the best validation's
    (``trainer.keep_best``) when that is another; none for a ``done`` run evaluated after its newest
    checkpoint was written (its results are in eval/*.json; it trains no more)."""
    newest = RunFolder(run_dir).step_folders()[:1]
    if done and newest and evaluated_after(run_dir, newest[0]):
        return []
    best = best_checkpoint(run_dir)
    return newest + ([best] if best is not None and best not in newest else [])


def evaluated_after(run_dir: Path, checkpoint: Path) -> bool:
    """Whether one of the run's eval/*.json files was written after ``checkpoint`` (after its newest file)."""
    written = max((p.stat().st_mtime for p in checkpoint.iterdir() if p.is_file()), default=None)
    evaluations = [p.stat().st_mtime for p in (run_dir / "eval").glob("*.json")]
    return written is not None and any(t > written for t in evaluations)


def pack(root: Path, out: Path, max_checkpoint_mb: float) -> list[str]:
    """Archive ROOT (see the module docstring); returns the runs whose latest checkpoint was included."""
    kept = []
    status = read_status(root)
    with tarfile.open(out, "w:gz") as archive:
        add = ArchiveOnce(archive).add
        for path in sorted(root.iterdir()):
            if path.name.startswith("."):  # the status lock
                continue
            if not path.is_dir():
                add(path, path.name)
                continue
            done = status.get(path.name) == "done"
            checkpoints = carried_checkpoints(path, done=done)
            small = bool(checkpoints) and all(
                folder_bytes(checkpoint) <= max_checkpoint_mb * 2**20 for checkpoint in checkpoints
            )
            if not done and not small:  # it restarts from step 0 on the next machine: its records would
                print(f"pack: {path.name} left out (unfinished, no checkpoint carried)")  # mislead a report
                continue
            kept += [path.name] if small else []
            for item in sorted(path.rglob("*")):
                inside = item.relative_to(path).parts
                if item.is_dir() or (
                    inside[0] == "checkpoints" and not (small and item.parent in checkpoints)
                ):
                    continue
                add(item, str(item.relative_to(root)))
    return kept


class ArchiveOnce:
    """Adds files to a tar archive, each content once: a file of 64 KiB or more whose bytes equal a file
    already added (every scaling run's copy of the one tokenizer.json, 1.1 MB) goes in as a hard link to it,
    which ``tar -x`` and ``tarfile`` restore as a file of the same bytes."""

    MIN_BYTES = 64 * 1024

    def __init__(self, archive: tarfile.TarFile):
        self.archive = archive
        self.first: dict[tuple[int, str], str] = {}  # (size, sha256) -> the arcname that holds the bytes

    def add(self, path: Path, arcname: str) -> None:
        size = path.stat().st_size
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if size >= self.MIN_BYTES else None
        if digest is not None and (size, digest) in self.first:
            info = self.archive.gettarinfo(path, arcname)
            info.type, info.linkname, info.size = tarfile.LNKTYPE, self.first[(size, digest)], 0
            self.archive.addfile(info)
            return
        if digest is not None:
            self.first[(size, digest)] = arcname
        self.archive.add(path, arcname=arcname, recursive=False)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=Path("outputs/repro"))
    parser.add_argument("--minutes", type=float, default=0.0, help="train every selected lane this long")
    parser.add_argument("--lanes", default="", help="comma-separated lane names (default: all)")
    parser.add_argument(
        "--runs", default="", help="comma-separated run names: train only these of the selected lanes"
    )
    parser.add_argument("--evaluate", default="", help="comma-separated run names to evaluate afterwards")
    parser.add_argument("--eval-timeout", type=float, default=600.0)
    parser.add_argument("--list", action="store_true", help="print the lanes, runs and commands")
    parser.add_argument("--override", action="append", default=[], help="a train.py override for every run")
    parser.add_argument("--pack", type=Path, default=None, help="write ROOT to this .tgz (see above)")
    parser.add_argument(
        "--pack-max-mb", type=float, default=PACK_MAX_MB, help="largest checkpoint (MiB) that --pack keeps"
    )
    args = parser.parse_args()
    EXTRA_OVERRIDES.extend(args.override)
    root = args.root.resolve()
    if args.list:
        for lane in LANES:
            print(f"lane {lane.name}")
            for run in lane.runs:
                print("  " + " ".join(train_command(run, root)[1:]))
        return
    root.mkdir(parents=True, exist_ok=True)
    for name in reconcile_status(root):
        print(f"{name}: its newest checkpoint is at its max_steps, recorded as done")
    wanted = set(filter(None, args.lanes.split(",")))
    unknown = wanted - {lane.name for lane in LANES}
    if unknown:
        raise SystemExit(f"unknown lanes {sorted(unknown)}; known: {[lane.name for lane in LANES]}")
    if args.minutes > 0:
        lanes = [lane for lane in LANES if not wanted or lane.name in wanted]
        train_pieces(only_runs(lanes, set(filter(None, args.runs.split(",")))), root, args.minutes)
    if args.evaluate:
        evaluate(args.evaluate.split(","), root, args.eval_timeout)
    if args.pack is not None:
        kept = pack(root, args.pack, args.pack_max_mb)
        print(f"packed {root} into {args.pack} (checkpoints of: {', '.join(kept) or 'none'})")
    print(summary(root))


if __name__ == "__main__":
    main()
