"""The architectural-modification study: VGG, Inception, MobileNet V2/V3 with
batch normalisation, residual connections and squeeze-and-excitation switched on or off.

Each model is trained (`robnas.training.loop.train`, PGD-AT, FGSM-RS or standard training), then
attacked by the suite on class-balanced CIFAR-10 *test* images (a robustness evaluation, not a
search). Per model and attack the table reports:

- success rate: among the test examples the model classifies correctly before the attack, the
  share the attack flips (examples already misclassified are not counted either way);
- seconds per attack per image: the attack's wall time over the examples it attacked;
- 1-SSIM: one minus the mean SSIM between clean and adversarial image over the *successful*
  adversarial examples (perceptibility; empty when the attack fooled none).

Resumable: each model's run folder (`models/<slug>/`, train's last.pt) and its finished row
(`rows/<slug>.json`) persist; a rerun skips models whose rows exist and continues an interrupted
training from last.pt.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import Tensor, nn

from robnas.attacks import Attack, make_attack, parse_eps
from robnas.attacks.suite import RobustnessSuite
from robnas.config import TrainConfig, get_preset, with_overrides
from robnas.data.datasets import load_dataset, split_train_val
from robnas.errors import ConfigError
from robnas.io import atomic_write_text
from robnas.models.resolve import resolve_arch
from robnas.models.switches import SWITCHES, canonical_name, networks, resolve_switches
from robnas.specs import DEFAULT_EPS
from robnas.studies.plot import plot_png
from robnas.training.loop import train

log = logging.getLogger(__name__)

STUDY_NETWORKS = ("vgg16", "inception", "mobilenet_v2", "mobilenet_v3")
STUDY_ATTACKS = ("fgsm", "pgd20", "cw")
STUDY_METHODS = ("pgd", "clean", "fgsm-rs")
METRICS = ("success_rate", "seconds_per_image", "one_minus_ssim")


def default_grid() -> list[str]:
    """Each study network in its standard form, then with each of its switches flipped alone."""

    names: list[str] = []
    for base in STUDY_NETWORKS:
        net = networks().get(base)
        names.append(base)
        for key in SWITCHES:
            if key in net.defaults:
                flipped = {**net.defaults, key: not net.defaults[key]}
                names.append(canonical_name(base, flipped, net.defaults))
    return names


def parse_models(text: str | Sequence[str] | None) -> list[str]:
    """Canonical names of a comma list (None: the default grid); one-line errors name the bad one."""

    if text is None:
        return default_grid()
    # split on commas outside brackets: `vgg16[bn=off,se=on],inception`
    items = re.findall(r"[^,\[\]]+(?:\[[^\]]*\])?", text) if isinstance(text, str) else text
    names: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        canonical = resolve_switches(item)[2]
        if canonical not in names:
            names.append(canonical)
    if not names:
        raise ConfigError("--models is empty; give names like mobilenet_v3,mobilenet_v3[se=off]")
    return names


def slug(name: str) -> str:
    """A file-system-safe folder name: `vgg16[bn=off,se=on]` -> `vgg16-bn-off-se-on`."""
    return re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-")


@dataclass(frozen=True)
class StudySettings:
    models: tuple[str, ...]
    method: str = "pgd"
    preset: str = "tiny"
    epochs: int | None = None
    train_size: int | None = None
    val_size: int | None = None
    test_size: int = 500
    steps: int | None = None  # training attack steps
    val_steps: int | None = None  # PGD steps of the trainer's robust validation
    attacks: tuple[str, ...] = STUDY_ATTACKS
    eps: float = DEFAULT_EPS
    eps_l2: float = 0.5
    cw_steps: int | None = None
    batch_size: int = 100
    seed: int = 0
    device: str = "cpu"
    dataset: str = "cifar10"
    data_dir: str | None = None

    def train_config(self) -> TrainConfig:
        cfg = with_overrides(
            get_preset(self.preset).train,
            method=self.method,
            epochs=self.epochs,
            steps=self.steps,
            val_steps=self.val_steps,
            eps=self.eps,
            device=self.device,
            seed=self.seed,
        )
        if self.val_size is not None:
            cfg = dataclasses.replace(cfg, val_size=min(cfg.val_size, self.val_size))
        return cfg

    def sizes(self) -> tuple[int | None, int]:
        p = get_preset(self.preset)
        train_n = self.train_size if self.train_size is not None else p.train_images
        val_n = self.val_size if self.val_size is not None else p.val_images
        return train_n, val_n

    def build_attacks(self) -> dict[str, Attack]:
        built: dict[str, Attack] = {}
        for name in self.attacks:
            kw: dict[str, Any] = {"steps": self.cw_steps} if name == "cw" and self.cw_steps else {}
            built[name] = make_attack(name, eps=self.eps, eps_l2=self.eps_l2, seed=self.seed, **kw)
        return built

    def fingerprint(self) -> dict[str, Any]:
        """Everything but the model list: rows from another setting must not be mixed in."""
        d = dataclasses.asdict(self)
        for key in ("models", "device", "data_dir"):
            d.pop(key)
        d["attacks"] = list(self.attacks)
        return d


def validate(settings: StudySettings) -> None:
    """Check everything that can be wrong before anything is read or written."""
    if settings.method not in STUDY_METHODS:
        raise ConfigError(f"--method must be one of {', '.join(STUDY_METHODS)}")
    parse_eps(settings.eps)
    if settings.test_size < 1 or settings.batch_size < 1:
        raise ConfigError("--test-size and --batch-size must be at least 1")
    settings.train_config()  # unknown preset, bad epochs
    settings.build_attacks()  # unknown attack names list the known ones


def attack_metrics(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    attacks: Mapping[str, Attack],
    *,
    batch_size: int = 100,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Clean accuracy and, per attack, success rate among initially-correct examples, seconds
    per attacked image and 1-SSIM over the successful adversarial examples."""
    suite = RobustnessSuite(attacks, batch_size=batch_size, seed=seed, run_checks=False)
    state = suite.new_state(int(images.shape[0]))
    suite.run(model, images, labels, state=state, device=device)
    correct = state["clean_pred"] == labels.cpu()
    n_correct = int(correct.sum())
    out: dict[str, float] = {
        "n_test": float(images.shape[0]),
        "n_correct": float(n_correct),
        "clean_acc": n_correct / images.shape[0],
    }
    for name in attacks:
        s = state["attacks"][name]
        fooled = s["attacked"] & ~s["robust"] & correct
        attacked = int(s["attacked"].sum())
        ssim_fooled = s["ssim"][fooled]
        out[f"{name}_success_rate"] = int(fooled.sum()) / n_correct if n_correct else math.nan
        out[f"{name}_seconds_per_image"] = float(s["seconds"]) / attacked if attacked else math.nan
        out[f"{name}_one_minus_ssim"] = (
            1.0 - float(ssim_fooled.mean()) if ssim_fooled.numel() else math.nan
        )
    return out


@dataclass
class Study:
    settings: StudySettings
    out: Path
    on_model: Callable[[str, dict[str, Any], bool], None] | None = None
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)

    def row_path(self, name: str) -> Path:
        return self.out / "rows" / f"{slug(name)}.json"

    def run_dir(self, name: str) -> Path:
        return self.out / "models" / slug(name)

    def check_folder(self) -> None:
        """Refuse a folder that holds a study with other settings (its rows would be mixed in)."""
        path = self.out / "study.json"
        if path.exists():
            saved = json.loads(path.read_text()).get("settings")
            if saved != json.loads(json.dumps(self.settings.fingerprint())):
                raise ConfigError(
                    f"{self.out} holds a study with other settings; use them or choose a new --out"
                )

    def run(self) -> list[dict[str, Any]]:
        s = self.settings
        validate(s)
        self.check_folder()
        todo = [m for m in s.models if not self.row_path(m).exists()]
        test = load_dataset(s.dataset, "test", data_dir=s.data_dir, limit=s.test_size, seed=s.seed)
        if len(test) < s.test_size:
            raise ConfigError(
                f"the {s.dataset} test split has {len(test)} images; lower --test-size"
            )
        train_data = val_data = None
        if todo:
            train_n, val_n = s.sizes()
            limit = train_n + val_n if train_n is not None else None
            data = load_dataset(s.dataset, "train", data_dir=s.data_dir, limit=limit, seed=s.seed)
            train_data, val_data = split_train_val(data, val_n, s.seed)
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            self.out / "study.json",
            json.dumps({"settings": s.fingerprint(), "models": list(s.models)}, indent=2) + "\n",
        )
        for name in s.models:
            path = self.row_path(name)
            if path.exists():
                self.rows[name] = json.loads(path.read_text())
                if self.on_model:
                    self.on_model(name, self.rows[name], True)
                continue
            assert train_data is not None and val_data is not None
            row = self._one(name, train_data, val_data, test)
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(row, indent=2) + "\n")
            self.rows[name] = row
            write_table(self.table(), self.out, s.attacks)
            if self.on_model:
                self.on_model(name, row, False)
        rows = self.table()
        write_table(rows, self.out, s.attacks)
        return rows

    def table(self) -> list[dict[str, Any]]:
        return [self.rows[m] for m in self.settings.models if m in self.rows]

    def _one(self, name: str, train_data: Any, val_data: Any, test: Any) -> dict[str, Any]:
        s = self.settings
        cfg = s.train_config()
        spec = resolve_arch(name, s.dataset)
        model = spec.build()
        began = time.perf_counter()
        # resume=True continues an interrupted run from last.pt (a finished one just loads it)
        result = train(model, train_data, val_data, cfg, self.run_dir(name), resume=True, spec=spec)
        train_seconds = time.perf_counter() - began
        model.eval()
        device = next(model.parameters()).device
        metrics = attack_metrics(
            model,
            test.floats(),
            test.labels,
            s.build_attacks(),
            batch_size=s.batch_size,
            seed=s.seed,
            device=device,
        )
        _, switches, _ = resolve_switches(name)
        row: dict[str, Any] = {"model": name, "network": name.split("[")[0]}
        row |= {k: ("on" if v else "off") for k, v in switches.items()}
        row["params"] = sum(p.numel() for p in model.parameters())
        row["method"] = cfg.method
        row["epochs"] = cfg.epochs
        row["train_seconds"] = round(train_seconds, 2)
        row["val_clean_acc"] = result.final.get("clean_acc", math.nan) if result.history else None
        row |= metrics
        log.info("%s: %s", name, row)
        return row


def table_columns(attacks: Sequence[str]) -> list[str]:
    cols = ["model", "network", "bn", "residual", "se", "params", "method", "epochs"]
    cols += ["train_seconds", "n_test", "n_correct", "clean_acc"]
    return cols + [f"{a}_{m}" for a in attacks for m in METRICS]


def write_table(rows: list[dict[str, Any]], out: Path, attacks: Sequence[str]) -> None:
    """modifications.csv, modifications.md and modifications.png in `out`."""

    cols = table_columns(attacks)
    frame = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    atomic_write_text(out / "modifications.csv", frame.to_csv(index=False))
    atomic_write_text(out / "modifications.md", markdown(rows, attacks))

    plot_png(rows, attacks, out / "modifications.png")


def _pct(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.1f}"


def _num(v: Any, fmt: str) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def markdown(rows: list[dict[str, Any]], attacks: Sequence[str]) -> str:
    head = ["model", "params", "clean %"]
    for a in attacks:
        head += [f"{a} success %", f"{a} s/img", f"{a} 1-SSIM"]
    lines = [
        "# Architectural-modification study",
        "",
        "Success % = among the test images the model classifies correctly before the attack, the "
        "share the attack flips. s/img = attack seconds per attacked image. 1-SSIM = mean over "
        "the successful adversarial examples (empty: none succeeded).",
        "",
        "| " + " | ".join(head) + " |",
        "|---|" + "---:|" * (len(head) - 1),
    ]
    for r in rows:
        cells = [f"`{r['model']}`", f"{r['params'] / 1e6:.2f}M", _pct(r["clean_acc"])]
        for a in attacks:
            cells += [
                _pct(r.get(f"{a}_success_rate")),
                _num(r.get(f"{a}_seconds_per_image"), ".4f"),
                _num(r.get(f"{a}_one_minus_ssim"), ".4f"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        r0 = rows[0]
        lines += [
            "",
            f"{int(r0['n_test'])} CIFAR-10 test images; training: {r0['method']}, "
            f"{r0['epochs']} epochs.",
        ]
    return "\n".join(lines) + "\n"
