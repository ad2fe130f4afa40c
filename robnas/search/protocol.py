"""Protocol searches (`--protocol ranker` or `lowfi`): NB201 cells scored by a protocol that
matches the NB201 robustness dataset (networks trained normally where anything is trained,
robustness at eps 1/255 under FGSM and PGD on images the search never trained on) and ranked by
the declared objective of the target (`--objective clean | fgsm@1 | pgd@1`, the dataset's names;
robnas.objectives.protocols says each formula). `--protocol supernet` is the supernet search.

The search reads CIFAR-10's training split from the data folder and nothing else: never the test
split, never the benchmark (this module imports no tabular code).
"""

from __future__ import annotations

from robnas.config import Preset
from robnas.data.datasets import resolve_data_dir
from robnas.errors import ConfigError, UnknownName
from robnas.evaluators.protocol import LOWFI_FIDELITY, protocol_evaluator
from robnas.objectives.protocols import (
    DEFAULT_PROTOCOL,
    DEFAULT_TRIALS,
    OBJECTIVE_KEY,
    PROTOCOLS,
    TARGETS,
)
from robnas.search.mode import Mode, Wiring, common_fields, refuse
from robnas.search.request import SearchRequest
from robnas.search.settings import ProtocolSettings
from robnas.space.search_space import SearchSpace, get_space

#: the target when `--objective` is not given
DEFAULT_TARGET = "fgsm@1"


def target_of(request: SearchRequest) -> str:
    """`--objective` as a protocol target (the dataset's names), default fgsm@1."""
    if request.objective is None:
        return DEFAULT_TARGET
    key = request.objective.key
    key = "clean" if key == "clean_acc" else key
    if key not in TARGETS:
        raise UnknownName(
            f"unknown objective {request.objective.key!r} for --protocol "
            f"{request.protocol}; known: {', '.join(TARGETS)}"
        )
    return key


class ProtocolSearch(Mode[ProtocolSettings]):
    name = "protocol"
    settings_type = ProtocolSettings

    @classmethod
    def resolve(
        cls, request: SearchRequest, space: SearchSpace, preset: Preset
    ) -> ProtocolSettings:
        protocol = request.protocol or DEFAULT_PROTOCOL
        if space.name != "nb201":
            raise ConfigError(
                f"--protocol {protocol} scores NB201 cells; search {space.name} with its "
                "supernet (drop --protocol)"
            )
        refuse(
            {
                "--supernet": request.supernet,
                "--final-train": request.final_train,
                "--eps": request.eps,
                "--attack-steps": request.attack_steps,
                "--method": request.method,
                "--epochs": request.epochs,
                "--finetune-epochs": request.finetune_epochs,
                "--size": request.size,
                "--prescreen": request.prescreen,
            },
            f"do not apply to --protocol {protocol} (it fixes its own training and attacks: "
            "eps 1/255, networks trained normally)",
        )
        if request.repeats != 1:
            raise ConfigError("--repeats needs a tabular search (--benchmark PATH)")

        settings = ProtocolSettings(
            **common_fields(request, space, preset),
            objective=OBJECTIVE_KEY,
            direction="maximize",
            trials=request.trials
            if request.trials is not None
            else max(preset.candidates.trials, DEFAULT_TRIALS.get(protocol, 0)),
            protocol=protocol,
            target=target_of(request),
            data_dir=request.data.data_dir,
            fidelity=LOWFI_FIDELITY if protocol == "lowfi" else None,
        )
        resolve_data_dir(request.data.data_dir)
        return settings

    def check(self) -> None:
        """Load the images the protocol reads (a DataError now, before config.json)."""
        s = self.settings
        self.space = get_space(s.space)
        self.evaluator = protocol_evaluator(
            s.protocol,
            s.target,
            self.space,
            final_macro=s.final_macro,
            dataset=s.dataset,
            data_dir=s.data_dir,
            seed=s.seed,
            **({"fidelity": s.fidelity} if s.fidelity is not None else {}),
        )

    def wire(self) -> Wiring:
        s = self.settings
        proxy = None
        if s.protocol == "lowfi":
            proxy = self.evaluator.inner.macro  # type: ignore[attr-defined]
        self.phase(f"scoring cells: {PROTOCOLS[s.protocol].split(':')[0]}")
        return Wiring.of(s, self.space, self.evaluator, proxy=proxy)


__all__ = ["DEFAULT_TARGET", "ProtocolSearch", "target_of"]
