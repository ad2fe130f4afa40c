"""Supernet searches (RobNet's protocol): train (or load) the weight-sharing supernet at the proxy
size, score each candidate with its inherited weights after a short finetune, under a budget on
the final (deployed) size; optionally train the winner at the final size and attack it.

The objective's attack is what the evaluator measures: PGD with `--attack-steps` steps at
`--eps` (`pgd20_acc`, PGD-20 at 8/255 by default), or the attack an `@` objective names
(`--objective fgsm@1`: FGSM at 1/255, `fgsm_acc`; `pgd@1`: PGD at 1/255). `--method` says how
the supernet and the candidates train (`clean`: without an attack).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from robnas.checkpoint import (
    load_checkpoint,
    load_state,
    save_checkpoint,
    split_record,
    unseen_images,
)
from robnas.config import Preset
from robnas.data import datasets
from robnas.data.datasets import ImageData, load_train_val, resolve_data_dir
from robnas.errors import CheckpointError, ConfigError
from robnas.evaluators.base import (
    DEFAULT_INDICATORS,
    Scoring,
    build_attack,
    genotype_seed,
    seeded,
    seeded_build,
)
from robnas.evaluators.indicator import IndicatorEvaluator
from robnas.evaluators.supernet import SupernetEvaluator
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS
from robnas.indicators.robust import robust_accuracy
from robnas.models import sizing
from robnas.models.samplers import make_sampler
from robnas.models.supernet import Supernet
from robnas.search.mode import (
    Mode,
    Wiring,
    common_fields,
    network_objective,
    proxy_size,
    training,
)
from robnas.search.request import SearchRequest
from robnas.search.settings import SupernetSettings
from robnas.space.search_space import SearchSpace, get_space
from robnas.specs import NETWORK_METRICS
from robnas.training.loop import train

#: Prescreen scores measured on the supernet's path (the others are structural).
WEIGHT_PRESCREENS = ("fsp_dist", "jac_norm", "hessian_eig")


class SupernetSearch(Mode[SupernetSettings]):
    name = "supernet"
    settings_type = SupernetSettings

    @classmethod
    def resolve(
        cls, request: SearchRequest, space: SearchSpace, preset: Preset
    ) -> SupernetSettings:
        if request.repeats != 1:
            raise ConfigError("--repeats needs a tabular search (--benchmark PATH)")
        fields = common_fields(request, space, preset)
        objective = network_objective(request, NETWORK_METRICS)
        if request.finetune_epochs is not None and request.finetune_epochs < 0:
            raise ConfigError(
                "--finetune-epochs must be >= 0 (0: score inherited weights as they are)"
            )
        train_cfg = training(request, preset)
        finetune = preset.finetune_config(train_cfg, request.finetune_epochs)
        data = request.data.with_defaults(preset.train_images, preset.val_images)
        protocol = preset.candidates
        settings = SupernetSettings(
            **fields,
            objective=objective.metric,
            direction=objective.direction,
            trials=request.trials if request.trials is not None else protocol.trials,
            search_macro=proxy_size(space, request, preset),
            train=train_cfg,
            finetune=finetune,
            train_size=data.train_size,
            val_size=data.val_size,
            finetune_size=protocol.finetune_images,
            score_size=protocol.score_images,
            data_dir=data.data_dir,
            supernet=str(Path(request.supernet).resolve()) if request.supernet else None,
            final_train=request.final_train,
            eps=objective.attack.eps,
            attack_steps=objective.attack.steps,
        )  # validates objective, prescreen, counts
        if request.supernet is not None and not Path(request.supernet).is_file():
            raise CheckpointError(
                f"supernet checkpoint {request.supernet} not found; train one or drop --supernet"
            )
        resolve_data_dir(data.data_dir)  # DataError when no local copy can be found
        return settings

    def check(self) -> None:
        """The split (never the test split); a reused supernet scores only on images it never
        trained on, or the search is refused now."""
        s = self.settings
        self.space = get_space(s.space)
        self.train_data, self.val_data = load_train_val(s.data, s.seed)
        ckpt_path = self.run_dir / "supernet.pt"
        self.source = s.supernet or (str(ckpt_path) if ckpt_path.is_file() else None)
        self.ckpt = load_checkpoint(self.source) if self.source is not None else None
        if self.ckpt is not None:
            need = min(s.score_size or len(self.val_data), len(self.val_data))
            self.val_data = unseen_images(
                self.ckpt, self.val_data, str(self.source), dataset=s.dataset, need=need
            )

    def wire(self) -> Wiring:
        s, space = self.settings, self.space
        model = self._supernet()
        # Each candidate finetunes and is scored on fixed seeded subsets (the same for every one).
        ft_n, score_n = s.finetune_size, s.score_size
        train_data, val_data = self.train_data, self.val_data
        evaluator = SupernetEvaluator(
            model,
            space,
            train_data.subset(min(ft_n, len(train_data)), s.seed) if ft_n else train_data,
            val_data.subset(min(score_n, len(val_data)), s.seed) if score_n else val_data,
            finetune_cfg=s.finetune,
            scoring=Scoring(
                attack=s.attack,
                indicators=DEFAULT_INDICATORS,
                batch_size=min(128, s.train.batch_size),
            ),
            final_macro=s.final_macro,
            seed=s.seed,
        )
        return Wiring.of(
            s,
            space,
            evaluator,
            proxy=dict(s.search_macro),
            cheap=self._prescreen(model, val_data) if s.prescreen else None,
            finish=self.final_train if s.final_train else None,
        )

    def _supernet(self) -> Supernet:
        """The supernet at the proxy size: loaded from the checkpoint, else trained here."""
        s, space = self.settings, self.space
        macro = dict(s.search_macro)
        model = seeded(s.seed, lambda: Supernet(space, macro, s.dataset))
        if self.ckpt is not None:
            self.phase(f"loading supernet {self.source}")
            load_state(model, self.ckpt["model"], str(self.source))
        else:
            self.phase("training supernet")
            sampler = make_sampler(s.train.sampler, model.space, s.seed, macro=macro)
            train(
                model,
                self.train_data,
                self.val_data,
                s.train,
                self.run_dir / "supernet",
                sampler=sampler,
                resume=True,
                progress=self.train_progress,
            )
            split = split_record(
                self.train_data, self.val_data, dataset=s.dataset, seed=s.seed, pool=s.data.limit
            )
            save_checkpoint(
                self.run_dir / "supernet.pt",
                {
                    "model": model.state_dict(),
                    "arch": f"supernet:{space.name}",
                    "kind": "supernet",  # robnas rank and --supernet read it like supernet train's
                    "space": space.name,
                    "macro": macro,
                    "dataset": s.dataset,
                    "split": split,
                },
            )
        device = next(model.parameters()).device
        return model.to(device)

    def _prescreen(self, model: Supernet, val_data: ImageData) -> Any:
        """The cheap score of `--prescreen` on the supernet's path (signed: higher is better)."""
        s = self.settings
        key = str(s.prescreen)
        sign = float(INDICATORS.get(key).direction) if key in INDICATORS else 1.0
        indicator = IndicatorEvaluator(
            self.space,
            None,
            val_data.subset(min(64, len(val_data)), s.seed),
            Scoring(
                attack=None,
                indicators=(key,) if key in WEIGHT_PRESCREENS else (),
                batch_size=64,
            ),
            supernet=model,
            final_macro=s.final_macro,
            seed=s.seed,
        )
        return lambda g: sign * indicator.evaluate(g).metrics[key]

    def final_train(self, genotype: str) -> dict[str, Any]:
        """Train the winner at the final size and attack it with the search's attack on the
        test split (the only step of a search that reads it)."""
        s, space = self.settings, self.space
        self.phase("training the winner")
        g = Genotype.from_str(genotype)
        model = seeded_build(space, g, s.final_macro, s.dataset, genotype_seed(s.seed, g))
        train(
            model,
            self.train_data,
            self.val_data,
            s.train,
            self.run_dir / "final",
            resume=True,
            progress=self.train_progress,
        )
        test = datasets.load_dataset(s.dataset, "test", data_dir=s.data_dir)
        test = test.subset(min(len(test), s.val_size or len(test)), s.seed)
        device = next(model.parameters()).device
        clean, robust = robust_accuracy(
            model,
            test.floats().to(device),
            test.labels.to(device),
            build_attack(s.attack, s.seed),
            batch_size=128,
            generator=torch.Generator(device=device).manual_seed(s.seed),
        )
        return {
            "genotype": genotype,
            "test_images": len(test),
            "eps": str(s.eps),
            "attack_steps": s.attack_steps,
            "num_params": sizing.num_params(space, g, s.final_macro, s.dataset),
            "clean_acc": clean,
            s.attack.metric: robust,
        }


__all__ = ["SupernetSearch"]
