"""Checkpoints inside an epoch: a run killed mid-pass resumes from its last such checkpoint and
ends exactly (bit for bit, on the CPU) where the uninterrupted run ends. Kills are simulated by
raising from the progress callback (after a step's update, before its checkpoint) or from a step,
and the resumed run is a fresh model, sampler and optimiser, as a new process would have."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from test_train import NB201_ARCH, synthetic, tiny_cfg
from torch import nn

import robnas.training.loop as loop
from robnas.checkpoint import read_checkpoint
from robnas.config import TrainConfig
from robnas.data.datasets import ImageData
from robnas.errors import CheckpointError, ConfigError
from robnas.models.resolve import build
from robnas.models.samplers import DenseStartSampler, FairOpSampler, PathSampler
from robnas.models.supernet import Supernet
from robnas.training.loop import Progress, train
from robnas.training.steps import AdversarialStep

COMPARED = ("epoch", "lr", "train_loss", "train_adv_acc", "clean_acc", "robust_acc")


class Killed(BaseException):
    """A simulated kill: nothing between the raise and the resume runs any cleanup."""


@dataclasses.dataclass
class Case:
    build: Callable[[], nn.Module]
    sampler: Callable[[nn.Module], PathSampler | None]
    cfg: TrainConfig
    train: ImageData
    val: ImageData

    def fresh(self, seed: int) -> tuple[nn.Module, PathSampler | None]:
        torch.manual_seed(seed)  # only initial weights: a resumed run must not depend on them
        model = self.build()
        return model, self.sampler(model)


def network() -> Case:
    # 40 images at batch 8: 5 steps an epoch, augmented, PGD-2
    return Case(
        lambda: build(NB201_ARCH, C=4, N=1),
        lambda _: None,
        tiny_cfg(batch_size=8, epochs=2),
        synthetic(40, 0),
        synthetic(16, 1),
    )


def dense_start_supernet() -> Case:
    # the tiny preset's sampler on a subset space: its draws change with the step count
    def sampler(model: nn.Module) -> PathSampler:
        assert isinstance(model, Supernet)
        return DenseStartSampler(model.space, seed=2, macro=model.macro)

    return Case(
        lambda: Supernet("darts", {"C": 4, "layers": 2}),
        sampler,
        tiny_cfg(batch_size=8, epochs=2, sampler="dense_start"),
        synthetic(32, 0),
        synthetic(16, 1),
    )


def fair_supernet() -> Case:
    # fair_op keeps a queue of drawn paths between steps: part of the sampler state
    def sampler(model: nn.Module) -> PathSampler:
        assert isinstance(model, Supernet)
        return FairOpSampler(model.space, seed=2)

    return Case(
        lambda: Supernet("nb201", {"C": 4, "N": 1}),
        sampler,
        tiny_cfg(batch_size=8, epochs=2, sampler="fair_op", method="trades"),
        synthetic(40, 0),
        synthetic(16, 1),
    )


def run(case: Case, out: Path, **kw) -> tuple[nn.Module, loop.TrainResult]:
    model, sampler = case.fresh(0)
    result = train(model, case.train, case.val, case.cfg, out, sampler=sampler, **kw)
    return model, result


def kill_at(epoch: int, step: int) -> Callable[[Progress], None]:
    def progress(report: Progress) -> None:
        if report.kind == "step" and (report.epoch, report.step) == (epoch, step):
            raise Killed

    return progress


def assert_same_run(a: tuple[nn.Module, loop.TrainResult], b: tuple[nn.Module, loop.TrainResult]):
    (model_a, result_a), (model_b, result_b) = a, b
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for key, value in state_a.items():
        assert torch.equal(value, state_b[key]), key
    rows_a = [{k: row[k] for k in COMPARED} for row in result_a.history]
    rows_b = [{k: row[k] for k in COMPARED} for row in result_b.history]
    assert rows_a == rows_b
    assert result_a.best == result_b.best


def log_rows(out: Path) -> list[list[str]]:
    """log.csv without its wall-time column."""
    lines = (out / "log.csv").read_text().splitlines()
    return [line.split(",")[:-1] for line in lines]


CASES = {"network": network, "dense_start": dense_start_supernet, "fair_op": fair_supernet}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each case's uninterrupted run (checkpoints at epoch ends only), trained once; its
    folder holds the model as `model.pt` and the history as `history.pt`."""
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            out = tmp_path_factory.mktemp(f"straight-{name}")
            model, result = run(CASES[name](), out, checkpoint_every=float("inf"))
            torch.save(model.state_dict(), out / "model.pt")
            torch.save((result.history, result.best), out / "history.pt")
            done[name] = out
        return done[name]

    return get


def straight_run(case: Case, out: Path) -> tuple[nn.Module, loop.TrainResult]:
    model, _ = case.fresh(1)
    model.load_state_dict(torch.load(out / "model.pt"))
    history, best = torch.load(out / "history.pt")
    return model, loop.TrainResult(case.cfg.epochs, history, best, out)


@pytest.mark.parametrize(
    "name, kill",
    [("network", (1, 4)), ("network", (2, 3)), ("dense_start", (2, 2)), ("fair_op", (1, 2))],
)
def test_killed_inside_an_epoch_ends_where_the_uninterrupted_run_ends(
    name: str,
    kill: tuple[int, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    uninterrupted: Callable[[str], Path],
) -> None:
    case = CASES[name]()
    reference = uninterrupted(name)
    straight = straight_run(case, reference)
    assert "in_epoch" not in read_checkpoint(reference / "last.pt")
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 1)  # a progress report (and a chance to die) a step

    out = tmp_path / "killed"
    epoch, step = kill
    with pytest.raises(Killed):
        run(case, out, checkpoint_every=0, progress=kill_at(epoch, step))
    # killed after step `step`'s update, before its checkpoint: the last one is a step earlier
    saved = read_checkpoint(out / "last.pt")
    assert saved["epoch"] == epoch - 1 and saved["in_epoch"]["step"] == step - 1
    assert len(saved["in_epoch"]["order"]) == len(case.train)

    steps: list[int] = []
    call = AdversarialStep.__call__

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        steps.append(1)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(AdversarialStep, "__call__", counting)
    model, sampler = case.fresh(123)  # a new process: other initial weights, a fresh sampler
    result = train(model, case.train, case.val, case.cfg, out, sampler=sampler, resume=True)
    per_epoch = len(case.train) // case.cfg.batch_size
    # resumed at the checkpoint: the killed step again, then the rest
    assert len(steps) == case.cfg.epochs * per_epoch - (epoch - 1) * per_epoch - (step - 1)
    assert_same_run(straight, (model, result))
    assert log_rows(out) == log_rows(reference)
    final = read_checkpoint(out / "last.pt")
    assert final["epoch"] == case.cfg.epochs and "in_epoch" not in final
    if sampler is not None:
        assert final["sampler"] == read_checkpoint(reference / "last.pt")["sampler"]


def test_a_kill_after_the_last_step_resumes_into_validation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: Callable[[str], Path]
) -> None:
    # every step done and checkpointed, killed in the validation: no step is trained again
    case = network()
    straight = straight_run(case, uninterrupted("network"))
    validate = loop.validate

    def dying(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise Killed

    monkeypatch.setattr(loop, "validate", dying)
    out = tmp_path / "killed"
    with pytest.raises(Killed):
        run(case, out, checkpoint_every=0)
    saved = read_checkpoint(out / "last.pt")
    assert saved["epoch"] == 0 and saved["in_epoch"]["step"] == 5 and saved["history"] == []
    monkeypatch.setattr(loop, "validate", validate)
    steps: list[int] = []
    call = AdversarialStep.__call__
    monkeypatch.setattr(
        AdversarialStep, "__call__", lambda self, *a, **k: (steps.append(1), call(self, *a, **k))[1]
    )
    model, _ = case.fresh(7)
    resumed = (model, train(model, case.train, case.val, case.cfg, out, resume=True))
    assert len(steps) == 5  # epoch 2 only
    assert_same_run(straight, resumed)


def test_dropout_draws_resume_from_the_saved_global_generator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # dropout draws from torch's global generator: its state is saved and restored too
    def model() -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(3 * 32 * 32, 10))

    case = Case(
        model, lambda _: None, tiny_cfg(batch_size=8, epochs=1), synthetic(40, 0), synthetic(8, 1)
    )
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 1)
    straight = run(case, tmp_path / "straight")
    with pytest.raises(Killed):
        run(case, tmp_path / "killed", checkpoint_every=0, progress=kill_at(1, 3))
    net, _ = case.fresh(99)  # another global generator state, as in a new process
    resumed = (net, train(net, case.train, case.val, case.cfg, tmp_path / "killed", resume=True))
    assert_same_run(straight, resumed)


def test_checkpoints_inside_an_epoch_follow_the_wall_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a clock that moves 50 s a step: a 120 s interval checkpoints every third step
    now = [0.0]
    clock = SimpleNamespace(monotonic=lambda: now[0], perf_counter=lambda: now[0])
    monkeypatch.setattr(loop, "time", clock)  # the loop's clock only
    call = AdversarialStep.__call__

    def slow(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        now[0] += 50.0
        return call(self, *args, **kwargs)

    monkeypatch.setattr(AdversarialStep, "__call__", slow)
    written: list[int | None] = []
    save = loop.save_checkpoint

    def spy(path, payload):  # type: ignore[no-untyped-def]
        if Path(path).name == "last.pt":
            written.append(payload["in_epoch"]["step"] if "in_epoch" in payload else None)
        save(path, payload)

    monkeypatch.setattr(loop, "save_checkpoint", spy)
    case = dataclasses.replace(network(), train=synthetic(64, 0))  # 8 steps an epoch
    run(case, tmp_path / "a")
    assert loop.CHECKPOINT_EVERY == 120.0
    # steps 3 and 6, the epoch end (None), then 3 and 6 of epoch 2 (the clock restarts at an end)
    assert written == [3, 6, None, 3, 6, None]
    written.clear()
    run(case, tmp_path / "b", checkpoint_every=float("inf"))
    assert written == [None, None]


def test_a_checkpoint_inside_an_epoch_needs_the_same_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = network()
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 1)
    with pytest.raises(Killed):
        run(case, tmp_path, checkpoint_every=0, progress=kill_at(1, 2))
    model, _ = case.fresh(0)
    with pytest.raises(CheckpointError, match="40 images, the training data has 48"):
        train(model, synthetic(48, 0), case.val, case.cfg, tmp_path, resume=True)
    with pytest.raises(ConfigError, match="checkpoint_every"):
        train(model, case.train, case.val, case.cfg, tmp_path / "x", checkpoint_every=-1)


def test_an_epoch_end_checkpoint_without_the_new_fields_still_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: Callable[[str], Path]
) -> None:
    # a last.pt written before checkpoints inside epochs: no in_epoch, no global RNG state
    from robnas.checkpoint import save_checkpoint

    case = network()
    straight = straight_run(case, uninterrupted("network"))
    out = tmp_path / "old"
    monkeypatch.setattr(loop, "PROGRESS_EVERY", 1)
    with pytest.raises(Killed):  # killed at the first step of epoch 2
        run(case, out, checkpoint_every=float("inf"), progress=kill_at(2, 1))
    old = read_checkpoint(out / "last.pt")
    assert old["epoch"] == 1 and "in_epoch" not in old
    old["rng"] = {"data": old["rng"]["data"]}
    save_checkpoint(out / "last.pt", old)
    model, _ = case.fresh(5)
    resumed = (model, train(model, case.train, case.val, case.cfg, out, resume=True))
    assert_same_run(straight, resumed)  # the network draws nothing from the global generator


@pytest.mark.slow
def test_a_search_killed_inside_its_supernet_pass_resumes_there(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`robnas search` trains its supernet (the tiny preset's single dense_start pass) in
    run_dir/supernet; killed inside the pass and resumed with --resume, it trains the remaining
    steps only and ends with the supernet and the result of the uninterrupted search."""
    from robnas.cli import main
    from robnas.search.rundir import RunDir

    monkeypatch.setenv("ROBNAS_DATA", str(data_root))

    def argv(out: Path) -> list[str]:
        return [
            "search", "--space", "darts", "--preset", "tiny", "--strategy", "random",
            "--trials", "1", "--train-size", "96", "--val-size", "16", "--finetune-epochs", "0",
            "--attack-steps", "1", "--out", str(out), "--no-progress",
        ]  # fmt: skip

    torch.manual_seed(0)  # the supernet's initial weights: both runs start alike
    assert main(argv(tmp_path / "straight")) == 0
    monkeypatch.setattr(loop, "CHECKPOINT_EVERY", 0.0)  # the default of train(..., resume=True)
    steps: list[int] = []
    call = AdversarialStep.__call__

    def dying(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        steps.append(1)
        if len(steps) == 3:  # 96 images at batch 32: killed in the last of 3 steps
            raise Killed
        return call(self, *args, **kwargs)

    monkeypatch.setattr(AdversarialStep, "__call__", dying)
    out = tmp_path / "killed"
    torch.manual_seed(0)
    with pytest.raises(Killed):
        main(argv(out))
    saved = read_checkpoint(out / "supernet" / "last.pt")
    assert saved["in_epoch"]["step"] == 2 and saved["sampler"]["name"] == "dense_start"
    assert not (out / "supernet.pt").exists()
    steps.clear()
    torch.manual_seed(123)  # a new process would start elsewhere: the checkpoint decides
    monkeypatch.setattr(AdversarialStep, "__call__", call)
    counted = AdversarialStep.__call__
    monkeypatch.setattr(
        AdversarialStep, "__call__", lambda s, *a, **k: (steps.append(1), counted(s, *a, **k))[1]
    )
    assert main(["search", "--resume", str(out), "--no-progress"]) == 0
    assert len(steps) == 1  # the killed step only
    a = read_checkpoint(tmp_path / "straight" / "supernet.pt")["model"]
    b = read_checkpoint(out / "supernet.pt")["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    best = [RunDir(run).read_summary()["best"] for run in (tmp_path / "straight", out)]
    assert best[0]["genotype"] == best[1]["genotype"]
    assert best[0]["metrics"] == best[1]["metrics"]


# `robnas` with torch's global generator seeded (torch seeds it differently in every process,
# and the supernet's initial weights come from it) and checkpoints after every step.
SIGKILL_CLI = (
    "import sys, torch; torch.manual_seed(0); import robnas.training.loop as loop; "
    "loop.CHECKPOINT_EVERY = 0.0; from robnas.cli import main; sys.exit(main())"
)


@pytest.mark.slow
def test_supernet_train_killed_with_sigkill_inside_its_pass_resumes_there(
    data_root: Path, tmp_path: Path
) -> None:
    """A real kill of `robnas supernet train --preset tiny` (one dense_start pass) between two
    checkpoints inside the pass, in another process: `--resume` in a third process ends with
    the weights of the uninterrupted run. The global generator is restored from the checkpoint:
    the resuming process starts from another seed."""

    def argv(out: Path, seed: int = 0) -> list[str]:
        return [
            sys.executable, "-c", SIGKILL_CLI.replace("manual_seed(0)", f"manual_seed({seed})"),
            "supernet", "train", "--space", "darts", "--preset", "tiny", "--C", "4",
            "--layers", "2", "--train-size", "640", "--val-size", "16", "--val-steps", "1",
            "--data-dir", str(data_root), "--out", str(out), "--no-progress",
        ]  # fmt: skip

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    straight = tmp_path / "straight"
    subprocess.run(argv(straight), env=env, check=True, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        argv(killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 600
    step = 0
    while step < 5 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        with contextlib.suppress(CheckpointError):  # not written yet (each write is atomic)
            step = read_checkpoint(killed / "last.pt").get("in_epoch", {}).get("step", 0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = read_checkpoint(killed / "last.pt")  # a whole checkpoint, however the kill fell
    assert "in_epoch" in saved and 5 <= saved["in_epoch"]["step"] < 20, saved.get("in_epoch")
    done = subprocess.run(
        [*argv(killed, seed=7), "--resume"], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    a, b = (read_checkpoint(run / "last.pt") for run in (straight, killed))
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert log_rows(straight) == log_rows(killed)
