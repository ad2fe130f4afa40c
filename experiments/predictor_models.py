"""Which library should the predictor strategy's model use? Fit time at n = 100 and quality.

On the NB201 robustness dataset (one cell per isomorphism class, 6,466 classes), each repeat
draws `--n` classes uniformly at random, fits each candidate model on their free cell features
(`CellFeatures`: GRAF-style graph statistics, #params, FLOPs, one-hot edges) and scores it on
every other class: Kendall tau of the predicted mean against the objective, and the true value
of the model's top-1 and the best true value among its top 10 (what a search picks from). Fit
time is the CPU time of one fit (ensemble included), single-threaded; the models are ensembles so
that the strategy can read a spread from them.

    python experiments/predictor_models.py [--n 100] [--repeats 20] [--objectives fgsm@1 pgd@1 clean]

Writes experiments/results/predictor_models/predictor_models.{csv,md}.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from _options import add_benchmark_argument
from scipy.stats import kendalltau  # noqa: E402

from robnas.analysis.nb201 import evaluated_indices  # noqa: E402
from robnas.data.tabular import load_benchmark  # noqa: E402
from robnas.space.search_space import get_space  # noqa: E402
from robnas.strategies.features import CellFeatures  # noqa: E402

HERE = Path(__file__).resolve().parent


class Bagged:
    """`size` boosted-tree models on bootstrap resamples: mean and spread over the members."""

    def __init__(self, build, size: int, seed: int) -> None:  # type: ignore[no-untyped-def]
        self.build, self.size, self.seed = build, size, seed

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        self.members = []
        for k in range(self.size):
            rows = rng.integers(len(y), size=len(y))
            self.members.append(self.build(self.seed * 1000 + k).fit(x[rows], y[rows]))

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack([m.predict(x) for m in self.members])
        return preds.mean(0), preds.std(0)


class Forest:
    """A scikit-learn forest: mean and spread over its trees."""

    def __init__(self, cls, seed: int, **kw) -> None:  # type: ignore[no-untyped-def]
        self.model = cls(random_state=seed, n_jobs=1, **kw)

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        self.model.fit(x, y)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack([t.predict(x) for t in self.model.estimators_])
        return preds.mean(0), preds.std(0)


class TorchEnsemble:
    """`size` small MLPs (2 hidden layers of 64), full-batch Adam on standardised data."""

    def __init__(self, seed: int, size: int = 5, steps: int = 300) -> None:
        self.seed, self.size, self.steps = seed, size, steps

    def fit(self, x: np.ndarray, y: np.ndarray) -> None:
        import torch

        torch.set_num_threads(1)
        self.mu, self.sd = x.mean(0), x.std(0) + 1e-9
        self.ym, self.ys = y.mean(), y.std() + 1e-9
        xt = torch.tensor((x - self.mu) / self.sd, dtype=torch.float32)
        yt = torch.tensor((y - self.ym) / self.ys, dtype=torch.float32)
        gen = torch.Generator().manual_seed(self.seed)
        self.nets = []
        for _ in range(self.size):
            net = torch.nn.Sequential(
                torch.nn.Linear(x.shape[1], 64),
                torch.nn.ReLU(),
                torch.nn.Linear(64, 64),
                torch.nn.ReLU(),
                torch.nn.Linear(64, 1),
            )
            for p in net.parameters():
                with torch.no_grad():
                    p.copy_(
                        torch.randn(p.shape, generator=gen)
                        * (0.1 if p.ndim == 1 else (1 / p.shape[1]) ** 0.5)
                    )
            opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=1e-3)
            for _ in range(self.steps):
                opt.zero_grad()
                loss = ((net(xt).squeeze(1) - yt) ** 2).mean()
                loss.backward()
                opt.step()
            self.nets.append(net)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        xt = torch.tensor((x - self.mu) / self.sd, dtype=torch.float32)
        with torch.no_grad():
            preds = np.stack([n(xt).squeeze(1).numpy() for n in self.nets]) * self.ys + self.ym
        return preds.mean(0), preds.std(0)


def _lightgbm(seed: int):  # type: ignore[no-untyped-def]
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=100,
        learning_rate=0.1,
        num_leaves=15,
        min_child_samples=5,
        colsample_bytree=0.8,
        random_state=seed,
        n_jobs=1,
        verbose=-1,
    )


def _xgboost(seed: int):  # type: ignore[no-untyped-def]
    from xgboost import XGBRegressor

    return XGBRegressor(
        n_estimators=100,
        learning_rate=0.1,
        max_depth=4,
        colsample_bytree=0.8,
        random_state=seed,
        n_jobs=1,
    )


def make_model(name: str, seed: int):  # type: ignore[no-untyped-def]
    """Every candidate is an ensemble: `predict` gives the mean and the spread of its members.

    random_forest / extra_trees: scikit-learn, 100 trees, max_features 0.5; lightgbm / xgboost:
    10 boosted models (100 rounds, depth/leaves small for n = 100) on bootstrap resamples;
    torch_mlp: 5 MLPs; strategy: the predictor strategy's own `TreeEnsemble`."""
    if name == "random_forest":
        from sklearn.ensemble import RandomForestRegressor

        return Forest(RandomForestRegressor, seed, n_estimators=100, max_features=0.5)
    if name == "extra_trees":
        from sklearn.ensemble import ExtraTreesRegressor

        return Forest(ExtraTreesRegressor, seed, n_estimators=100, max_features=0.5)
    if name == "strategy":  # what the predictor strategy fits: 30 random-split trees, 0.3
        from robnas.strategies.predictor import TreeEnsemble

        return TreeEnsemble(trees=30, max_features=0.3, seed=seed)
    if name == "lightgbm":
        return Bagged(_lightgbm, 10, seed)
    if name == "xgboost":
        return Bagged(_xgboost, 10, seed)
    if name == "torch_mlp":
        return TorchEnsemble(seed)
    raise ValueError(name)


MODELS = ("strategy", "random_forest", "extra_trees", "lightgbm", "xgboost", "torch_mlp")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_benchmark_argument(parser)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--objectives", nargs="+", default=["fgsm@1", "pgd@1", "clean"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "predictor_models")
    args = parser.parse_args()

    space = get_space("nb201")
    bench = load_benchmark(args.benchmark)
    # one genotype per isomorphism class, the one the dataset evaluated, and its table row
    indices = evaluated_indices(bench)
    genotypes, rows = [bench.genotypes[i] for i in indices], bench.rows[indices]
    features = CellFeatures(space, macro=space.resolve_macro("paper"), onehot=True)
    x_all = features.matrix(genotypes)
    out: list[dict[str, object]] = []
    for objective in args.objectives:
        y_all = 100 * bench.table[rows, bench.column(objective)]
        for model_name in args.models:
            for repeat in range(args.repeats):
                rng = np.random.default_rng([args.seed, repeat])
                train = rng.choice(len(rows), size=args.n, replace=False)
                test = np.setdiff1d(np.arange(len(rows)), train)
                model = make_model(model_name, seed=repeat)
                start = time.process_time()  # CPU seconds: robust to a shared machine
                model.fit(x_all[train], y_all[train])
                fit = time.process_time() - start
                mean, _ = model.predict(x_all[test])
                order = np.argsort(-mean, kind="stable")
                out.append(
                    {
                        "objective": objective,
                        "model": model_name,
                        "repeat": repeat,
                        "fit_seconds": round(fit, 4),
                        "kendall_tau": round(float(kendalltau(mean, y_all[test])[0]), 4),
                        "top1": float(y_all[test][order[0]]),
                        "best_of_top10": float(y_all[test][order[:10]].max()),
                    }
                )
            done = [r for r in out if r["objective"] == objective and r["model"] == model_name]
            print(
                f"{objective:7s} {model_name:10s} tau {np.mean([r['kendall_tau'] for r in done]):.3f}"
                f" fit {np.mean([r['fit_seconds'] for r in done]):.3f}s",
                file=sys.stderr,
            )
    write(out, args)
    return 0


def write(rows: list[dict[str, object]], args: argparse.Namespace) -> None:
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = args.out / "predictor_models.csv.tmp"
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(args.out / "predictor_models.csv")
    lines = [
        f"Predictor models on the NB201 robustness dataset: fit on n = {args.n} uniformly drawn "
        f"isomorphism classes, scored on the other {6466 - args.n}; {args.repeats} draws; mean "
        "(sample SD). tau: Kendall tau of the predicted mean; top-1 / best of top-10: true value "
        "(%) of the model's best-predicted class / the best of its ten best-predicted; fit: "
        "CPU seconds per fit of the whole ensemble, one thread.",
        "",
        "| objective | model | tau | top-1 | best of top-10 | fit (s) |",
        "|---|---|---|---|---|---|",
    ]
    for objective in args.objectives:
        for model in args.models:
            sel = [r for r in rows if r["objective"] == objective and r["model"] == model]
            cols = []
            for key, fmt in (
                ("kendall_tau", ".3f"),
                ("top1", ".2f"),
                ("best_of_top10", ".2f"),
                ("fit_seconds", ".3f"),
            ):
                v = np.array([float(r[key]) for r in sel])  # type: ignore[arg-type]
                cols.append(f"{v.mean():{fmt}} ({v.std(ddof=1):{fmt}})")
            lines.append(f"| {objective} | {model} | " + " | ".join(cols) + " |")
    text = "\n".join(lines) + "\n"
    (args.out / "predictor_models.md").write_text(text)
    print(text)


if __name__ == "__main__":
    sys.exit(main())
