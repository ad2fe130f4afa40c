"""Data-parallel training on the CPU (gloo): two processes equal one, rank 0 alone writes,
validation counts are reduced over ranks, and a run killed under torchrun resumes."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_train import synthetic, tiny_cfg

from robnas.models.supernet import Supernet, UniformOpSampler

pytestmark = pytest.mark.slow

METHODS = ("pgd", "trades", "clean")
ARCH = (
    "nb201:|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
)


def _train(method: str, out: Path, chunks: int) -> dict:
    """One short supernet run; returns its parameters, sampled paths, saves and history."""
    import robnas.training.loop as loop
    from robnas.training.loop import train

    torch.manual_seed(0)
    supernet = Supernet("nb201", {"C": 4, "N": 1})
    sampler = UniformOpSampler(supernet.space, seed=3)
    paths: list[str] = []
    draw = sampler.sample

    def record():
        g = draw()
        paths.append(g.to_str())
        return g

    sampler.sample = record  # type: ignore[method-assign]
    saves: list[str] = []
    save = loop.save_checkpoint
    loop.save_checkpoint = lambda p, payload: (saves.append(Path(p).name), save(p, payload))  # type: ignore[assignment]
    try:
        cfg = tiny_cfg(method=method, epochs=2, batch_size=16, attack_train_mode=True)
        result = train(
            supernet, synthetic(48, 0), synthetic(16, 1), cfg, out, sampler=sampler, chunks=chunks
        )
    finally:
        loop.save_checkpoint = save
    params = {k: p.detach().clone() for k, p in supernet.named_parameters()}
    return {"params": params, "paths": paths, "saves": saves, "history": result.history}


class _Killed(BaseException):
    pass


def _killed_and_resumed(root: Path) -> dict:
    """A supernet run killed inside epoch 2 on every rank, then resumed, beside the same run
    uninterrupted: both ranks' final parameters, and what was saved where."""
    import robnas.training.loop as loop
    from robnas.checkpoint import read_checkpoint
    from robnas.training.loop import train
    from robnas.training.steps import AdversarialStep

    cfg = tiny_cfg(epochs=2, batch_size=16, attack_train_mode=True)
    data, val = synthetic(64, 0), synthetic(16, 1)  # 4 steps an epoch

    def fresh(seed: int) -> tuple[Supernet, UniformOpSampler]:
        torch.manual_seed(seed)
        supernet = Supernet("nb201", {"C": 4, "N": 1})
        return supernet, UniformOpSampler(supernet.space, seed=3)

    def params(model: Supernet) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    straight, sampler = fresh(0)
    train(straight, data, val, cfg, root / "straight", sampler=sampler)
    saves: list[str] = []
    save, call, every = loop.save_checkpoint, AdversarialStep.__call__, loop.PROGRESS_EVERY
    calls = [0]

    def dying(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 7:  # epoch 2, step 3: after the checkpoint at its step 2
            raise _Killed
        return call(self, *args, **kwargs)

    loop.save_checkpoint = lambda p, payload: (saves.append(Path(p).name), save(p, payload))  # type: ignore[assignment]
    loop.PROGRESS_EVERY = 2  # ranks agree on checkpoints every 2 steps
    AdversarialStep.__call__ = dying  # type: ignore[method-assign]
    killed, sampler = fresh(0)
    try:
        train(killed, data, val, cfg, root / "killed", sampler=sampler, checkpoint_every=0)
    except _Killed:
        pass
    finally:
        AdversarialStep.__call__ = call  # type: ignore[method-assign]
    try:
        dist.barrier()  # rank 0 has written before anyone reads
        saved = read_checkpoint(root / "killed" / "last.pt")["in_epoch"]["step"]
        resumed, sampler = fresh(123)
        train(resumed, data, val, cfg, root / "killed", sampler=sampler, resume=True)
    finally:
        loop.save_checkpoint, loop.PROGRESS_EVERY = save, every  # type: ignore[assignment]
    return {
        "straight": params(straight),
        "resumed": params(resumed),
        "saves": saves,
        "saved_step": saved,
    }


def _worker(rank: int, world: int, init: str, root: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        out = {m: _train(m, Path(root) / f"ddp-{m}", chunks=1) for m in METHODS}
        out["validation"] = _validation_counts()  # type: ignore[assignment]
        out["resume"] = _killed_and_resumed(Path(root) / "resume")
        torch.save(out, Path(root) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _validation_counts() -> dict[str, dict[str, float]]:
    """Validation of one fixed network: reduced over the ranks, and this rank's half alone."""
    from robnas.attacks import PGD
    from robnas.models.resolve import build
    from robnas.training.distributed import join
    from robnas.training.validate import evaluate_robust, validate

    torch.manual_seed(1)
    model = build(ARCH, C=4, N=1)
    cfg = tiny_cfg(val_size=30)
    ranks = join(torch.device("cpu"))
    val = synthetic(30, 2)
    reduced = validate(model, synthetic(16, 0), val, cfg, ranks=ranks)
    half = val.take(torch.arange(ranks.rank, 30, ranks.world))
    local = evaluate_robust(model, half, PGD(cfg.eps, steps=1, seed=cfg.seed))
    return {"reduced": reduced, "local": local}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("ddp")
    init = f"file://{root / 'rendezvous'}"
    mp.start_processes(_worker, args=(2, init, str(root)), nprocs=2, start_method="spawn")
    ranks = [torch.load(root / f"rank{r}.pt", weights_only=False) for r in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: other thread counts reorder float sums
    try:
        single = {m: _train(m, root / f"single-{m}", chunks=2) for m in METHODS}
        single["validation"] = _validation_counts()
    finally:
        torch.set_num_threads(threads)
    return {"ranks": ranks, "single": single, "root": root}


@pytest.mark.parametrize("method", METHODS)
def test_two_processes_equal_one_on_the_same_global_batch(runs, method):
    r0, r1, one = runs["ranks"][0][method], runs["ranks"][1][method], runs["single"][method]
    # every rank ran the same sampled path at every step, the same as one process
    assert r0["paths"] == r1["paths"] == one["paths"] and len(set(one["paths"])) > 1
    for name, p in one["params"].items():
        assert torch.equal(r0["params"][name], r1["params"][name]), name
        torch.testing.assert_close(r0["params"][name], p, rtol=1e-4, atol=1e-5, msg=name)
    # training statistics are summed over ranks
    for a, b in zip(r0["history"], one["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-4)
        assert a["train_adv_acc"] == pytest.approx(b["train_adv_acc"])
        assert a["clean_acc"] == pytest.approx(b["clean_acc"])


def test_only_rank_zero_writes(runs):
    assert runs["ranks"][1]["pgd"]["saves"] == []
    assert "last.pt" in runs["ranks"][0]["pgd"]["saves"]
    assert (runs["root"] / "ddp-pgd" / "log.csv").exists()


def test_a_kill_inside_an_epoch_resumes_every_rank_where_the_run_would_be(runs):
    r0, r1 = (runs["ranks"][r]["resume"] for r in range(2))
    assert r0["saved_step"] == r1["saved_step"] == 2  # inside epoch 2, read by both ranks
    assert r1["saves"] == [] and r0["saves"].count("last.pt") >= 3  # rank 0 alone writes
    # each rank ends as it would have (BN statistics are per rank: each sees its own shard)
    for rank in (r0, r1):
        for name, p in rank["straight"].items():
            assert torch.equal(rank["resumed"][name], p), name
    weights = [k for k in r0["resumed"] if not k.split(".")[-1].startswith(("running", "num_"))]
    assert all(torch.equal(r0["resumed"][k], r1["resumed"][k]) for k in weights)


def test_validation_is_reduced_over_ranks(runs):
    # each rank attacks half the subset; the summed counts give the single-process accuracy
    r0, r1 = (runs["ranks"][r]["validation"] for r in range(2))
    one = runs["single"]["validation"]["reduced"]
    assert r0["reduced"] == r1["reduced"]
    both = r0["reduced"]
    assert both["clean_acc"] == pytest.approx(one["clean_acc"])
    halves = (r0["local"]["clean_acc"], r1["local"]["clean_acc"])
    assert both["clean_acc"] == pytest.approx(sum(halves) / 2)
    assert halves[0] != halves[1]  # so a rank's own half would have given another number
    assert 0.0 <= both["robust_acc"] <= both["clean_acc"]


def _torchrun(out: Path, data_root: Path, *extra: str) -> subprocess.Popen:
    # torchrun's own -m: the console script may be a shell shim (pyenv) torchrun cannot run
    entry = ["-m", "robnas"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    cmd += [*entry, "supernet", "train", "--space", "nb201", "--preset", "tiny", "--C", "4"]
    cmd += ["--N", "1", "--train-size", "256", "--val-size", "32", "--batch-size", "32"]
    cmd += ["--val-steps", "2", "--epochs", "4", "--no-progress", "--data-dir", str(data_root)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [*cmd, "--out", str(out), *extra],
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _rows(out: Path) -> list[dict[str, str]]:
    path = out / "log.csv"
    return list(csv.DictReader(path.open())) if path.exists() else []


def test_resume_after_kill_under_torchrun(tmp_path, data_root):
    out = tmp_path / "run"
    proc = _torchrun(out, data_root)
    deadline = time.monotonic() + 120
    while not _rows(out) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the launcher and both workers, mid-run
    proc.wait()
    before = _rows(out)
    assert 1 <= len(before) < 4, proc.stdout.read() if proc.stdout else ""
    resumed = _torchrun(out, data_root, "--resume")
    text, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, text
    after = _rows(out)
    assert [r["epoch"] for r in after] == ["1", "2", "3", "4"]
    assert after[: len(before)] == before  # epochs before the kill are kept, not retrained
    assert text.count("final: clean") == 1  # only rank 0 prints
