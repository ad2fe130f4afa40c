"""Macro-space searches (`robnas search --space wrn`): whole networks, each candidate trained at a
small proxy and attacked, under parameter and FLOPs budgets at the deployed size.

    robnas search --space wrn --budget 20M --flops-budget 5G --preset tiny \\
        --strategy regularized_evolution --out runs/wrn

Settings (`MacroSettings`): `final_macro` is the deployed size (the space's default: the
genotype as named) which `budget` (parameters) and `flops_budget` (multiply-adds) bind;
`search_macro` the proxy (`--size`, else the size named by the preset's search size: tiny,
small). `finetune` is the low-fidelity schedule every candidate gets (the preset's finetune
epochs, `--finetune-epochs`), `train` the full fidelity the promising half reaches (`--epochs`,
default twice the low fidelity); `--method` says how they train. Candidates train on
`train_size` images and are scored on `score_size` images held out of the training split
(`val_size`), never the test split, with the objective's attack (PGD-20 at 8/255 unless
`--objective fgsm@1` or `pgd@...` names another). Every strategy but `surrogate` (its kernel
compares cell edges) searches a macro space.
"""

from __future__ import annotations

from robnas.config import Preset, with_overrides
from robnas.data.datasets import load_train_val, resolve_data_dir
from robnas.errors import ConfigError
from robnas.evaluators.macro import MacroEvaluator
from robnas.search.mode import Mode, Wiring, common_fields, network_objective, proxy_size, refuse
from robnas.search.mode import training as training_of
from robnas.search.request import SearchRequest
from robnas.search.settings import MacroSettings
from robnas.space.macro import MacroSpace
from robnas.space.search_space import SearchSpace, get_space

#: strategies whose model reads cell structure (edges, paths) and cannot search a macro space
CELL_ONLY_STRATEGIES = ("surrogate",)


def _macro_space(space: SearchSpace) -> MacroSpace:
    if not isinstance(space, MacroSpace):
        raise ConfigError(f"space {space.name} is a cell space, not a macro space")
    return space


class MacroSearch(Mode[MacroSettings]):
    name = "macro"
    settings_type = MacroSettings

    @classmethod
    def resolve(cls, request: SearchRequest, space: SearchSpace, preset: Preset) -> MacroSettings:
        macro_space = _macro_space(space)
        strategy = request.strategy.lower()
        if strategy in CELL_ONLY_STRATEGIES:
            raise ConfigError(
                f"strategy {strategy} models cell edges; search {space.name} with random, "
                "regularized_evolution, local_search, tpe or nsga2"
            )
        for flag, given in (
            ("--benchmark", request.benchmark),
            ("--final-train", request.final_train),
        ):
            if given:
                raise ConfigError(
                    f"{flag} does not apply to a macro-space search; train the winner with "
                    f"`robnas train '{space.name}:depths=...'`"
                )
        refuse(
            {
                "--repeats": request.repeats if request.repeats != 1 else None,
                "--prescreen": request.prescreen,
                "--supernet": request.supernet,
            },
            "do not apply to a macro-space search (each candidate trains at the proxy)",
        )
        fields = common_fields(request, macro_space, preset)
        objective = network_objective(request, MacroSettings.metrics)
        low = request.finetune_epochs
        low = low if low is not None else max(1, preset.candidates.finetune_epochs)
        if low < 1:
            raise ConfigError("--finetune-epochs (the low fidelity) must be at least 1 here")
        full = training_of(request, preset, epochs=request.epochs or 2 * low)
        low_cfg = with_overrides(
            full,
            epochs=low,
            warmup_epochs=min(full.warmup_epochs, low),
            clean_epochs=min(full.clean_epochs, low),
        )
        data = request.data.with_defaults(preset.candidates.finetune_images, preset.val_images)
        settings = MacroSettings(
            **fields,
            objective=objective.metric,
            direction=objective.direction,
            trials=request.trials if request.trials is not None else preset.candidates.trials,
            flops_budget=request.budget.flops,
            search_macro=proxy_size(macro_space, request, preset),
            train=full,
            finetune=low_cfg,
            train_size=data.train_size,
            val_size=data.val_size,
            score_size=preset.candidates.score_images,
            data_dir=data.data_dir,
            eps=objective.attack.eps,
            attack_steps=objective.attack.steps,
        )  # validates the objective and the counts
        resolve_data_dir(data.data_dir)
        return settings

    def check(self) -> None:
        s = self.settings
        self.space = _macro_space(get_space(s.space))
        self.train_data, val_data = load_train_val(s.data, s.seed)
        n = s.score_size
        self.score_data = val_data.subset(min(n, len(val_data)), s.seed) if n else val_data

    def wire(self) -> Wiring:
        s, space = self.settings, self.space
        final, proxy = s.final_macro, dict(s.search_macro)
        evaluator = MacroEvaluator(
            space,
            proxy,
            self.train_data,
            self.score_data,
            s.finetune or s.train,
            s.train,
            objective=s.objective,
            final_macro=final,
            dataset=s.dataset,
            attack=s.attack,
            batch_size=min(128, s.train.batch_size),
            seed=s.seed,
        )
        return Wiring.of(s, space, evaluator, proxy=proxy)


__all__ = ["CELL_ONLY_STRATEGIES", "MacroSearch"]
