"""`robnas evaluate`: the attack suite on a trained model, validated up front, saved as it goes.

`load_model` builds ARCH and loads a checkpoint that must match it (robnas.checkpoint: sizes come
from the checkpoint unless given; every mismatch is a one-line CheckpointError).

`EvaluationJob.prepare` checks everything that can be wrong (attack names, eps, the checkpoint
against ARCH, the data) before anything is written. While running, the suite state is saved
atomically after every batch to `<stem>.partial.pt`, keyed by a fingerprint of the inputs, so an
interrupted run resumes; the final CSV and JSON replace their targets atomically.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from robnas.attacks import ATTACKS, Attack, format_eps, make_attack, parse_eps
from robnas.attacks.suite import RobustnessSuite, SuiteReport, SuiteState
from robnas.checkpoint import (
    file_digest,
    model_from_checkpoint,
    read_checkpoint,
    spec_for_checkpoint,
)
from robnas.data.datasets import load_dataset
from robnas.errors import ConfigError
from robnas.io import atomic_torch_save, atomic_write_text
from robnas.specs import DEFAULT_EPS, Size

log = logging.getLogger(__name__)


def load_model(
    arch: str,
    checkpoint: str | Path,
    dataset: str = "cifar10",
    *,
    device: str | torch.device = "cpu",
    space: str | None = None,
    size: Size | None = None,
    **macro: Any,
) -> nn.Module:
    """ARCH built at the checkpoint's size (given macro options override it) with its weights,
    in eval mode on `device`."""
    ckpt = read_checkpoint(checkpoint)
    spec = spec_for_checkpoint(arch, ckpt, dataset=dataset, space=space, size=size, **macro)
    return model_from_checkpoint(spec, ckpt, str(checkpoint)).to(device).eval()


def parse_attack_list(text: str) -> list[str]:
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not names:
        raise ConfigError("--attacks is empty; give names like fgsm,pgd20")
    if len(set(names)) != len(names):
        raise ConfigError(f"--attacks repeats a name: {text!r}")
    for name in names:
        ATTACKS.get(name)  # UnknownName lists the known attacks
    return names


@dataclass
class EvaluationJob:
    model: nn.Module
    images: torch.Tensor
    labels: torch.Tensor
    suite: RobustnessSuite
    fingerprint: dict[str, Any]
    csv_path: Path
    json_path: Path
    partial_path: Path
    device: torch.device

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    @classmethod
    def prepare(
        cls,
        *,
        arch: str,
        checkpoint: Path,
        dataset: str = "cifar10",
        attacks: str | list[str] = "fgsm,pgd20",
        eps: str | float = DEFAULT_EPS,
        eps_l2: str | float = 0.5,
        n: int = 1000,
        batch_size: int = 100,
        data_dir: str | Path | None = None,
        out: Path | None = None,
        seed: int = 0,
        device: str = "cpu",
        cascade: bool = False,
        checks: bool = True,
        macro: dict[str, Any] | None = None,
        space: str | None = None,
        size: Size | None = None,
    ) -> EvaluationJob:
        names = parse_attack_list(attacks if isinstance(attacks, str) else ",".join(attacks))
        eps_v = parse_eps(eps)
        eps_l2_v = _parse_l2(eps_l2)
        if n < 1 or batch_size < 1:
            raise ConfigError(f"--n and --batch-size must be >= 1, got {n} and {batch_size}")
        built: dict[str, Attack] = {
            name: make_attack(name, eps=eps_v, eps_l2=eps_l2_v, seed=seed) for name in names
        }
        model = load_model(
            arch, checkpoint, dataset, device=device, space=space, size=size, **(macro or {})
        )
        data = load_dataset(dataset, "test", data_dir=data_dir, limit=n, seed=seed)
        if len(data) < n:
            raise ConfigError(f"the {dataset} test split has {len(data)} examples; lower --n")
        folder = out if out is not None else checkpoint.parent
        stem = f"{checkpoint.stem}.eval-{dataset}-eps{format_eps(eps_v).replace('/', '-')}"
        fingerprint = {
            "arch": arch,
            "checkpoint_sha256": file_digest(checkpoint),
            "dataset": dataset,
            "n": n,
            "seed": seed,
            "eps": eps_v,
            "eps_l2": eps_l2_v,
            "attacks": {name: _jsonable(a.config()) for name, a in built.items()},
            "batch_size": batch_size,
            "cascade": cascade,
            "checks": checks,
        }
        suite = RobustnessSuite(
            built, batch_size=batch_size, cascade=cascade, seed=seed, run_checks=checks
        )
        return cls(
            model=model,
            images=data.floats(),
            labels=data.labels,
            suite=suite,
            fingerprint=fingerprint,
            csv_path=folder / f"{stem}.csv",
            json_path=folder / f"{stem}.json",
            partial_path=folder / f"{stem}.partial.pt",
            device=torch.device(device),
        )

    def load_partial(self) -> SuiteState | None:
        """Saved progress of this very evaluation, or None (other inputs => start afresh)."""
        if not self.partial_path.is_file():
            return None
        try:
            saved = torch.load(self.partial_path, map_location="cpu", weights_only=True)
        except Exception:  # a foreign or damaged file: ignore it, it is rewritten as we go
            log.warning("ignoring unreadable partial file %s", self.partial_path)
            return None
        if not isinstance(saved, dict) or saved.get("fingerprint") != self.fingerprint:
            log.warning(
                "partial file %s belongs to other inputs; starting afresh", self.partial_path
            )
            return None
        state: SuiteState = saved["state"]
        return state

    def _save_partial(self, state: SuiteState) -> None:
        atomic_torch_save(self.partial_path, {"fingerprint": self.fingerprint, "state": state})

    def run(
        self,
        *,
        state: SuiteState | None = None,
        on_unit: Callable[[SuiteState], None] | None = None,
    ) -> SuiteReport:
        def unit_done(s: SuiteState) -> None:
            self._save_partial(s)
            if on_unit:
                on_unit(s)

        report = self.suite.run(
            self.model, self.images, self.labels, state=state, on_unit=unit_done, device=self.device
        )
        self.write(report)
        self.partial_path.unlink(missing_ok=True)
        return report

    def write(self, report: SuiteReport) -> None:
        buffer = io.StringIO()
        pd.DataFrame(report.to_records()).to_csv(buffer, index=False)
        atomic_write_text(self.csv_path, buffer.getvalue())
        payload = {
            "config": {**self.fingerprint, "eps": format_eps(self.fingerprint["eps"])},
            "metrics": report.metrics(),
            **report.to_json(),
        }
        atomic_write_text(self.json_path, json.dumps(_jsonable(payload), indent=2) + "\n")


def _parse_l2(value: str | float) -> float:
    try:
        v = float(value)
    except ValueError:
        raise ConfigError(f"cannot read --eps-l2 {value!r}; write it like 0.5") from None
    if not 0 < v < float("inf"):
        raise ConfigError(f"--eps-l2 must be > 0, got {value!r}")
    return v


def _jsonable(obj: Any) -> Any:
    """NaN -> None, tuples -> lists, so the JSON is strict and diff-friendly."""
    if isinstance(obj, float):
        return None if obj != obj else obj
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return obj
