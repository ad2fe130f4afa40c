"""`robnas scale --rule 7:3 --flops 5G`: the RobustScaling depths and widths for a target."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scale",
        help="RobustScaling: per-stage depths and widths for a FLOPs or parameter target",
        description="Distribute depth and width of a three-stage residual network for a target "
        "(Huang et al. 2023): depths 2:2:1, widening factors 2:2.5:1, total depth : total width "
        "given by --rule. Prints the configuration, its exact cost and the paper's own choice "
        "when the target is one of its (5G, 10G, 20G, 40G FLOPs).",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--flops", help="multiply-adds at 32x32, e.g. 5G")
    target.add_argument("--params", help="trainable parameters, e.g. 20M")
    parser.add_argument("--rule", default="7:3", help="total depth : total width (default 7:3)")
    parser.add_argument(
        "--block",
        default="preact",
        choices=("basic", "preact", "bottleneck", "robust"),
        help="block the cost is measured with (preact = WRN basic block; robust = RobustResBlock)",
    )
    parser.add_argument("--activation", default="relu", help="relu, silu or softplus")
    parser.add_argument("--se", choices=("none", "standard", "residual"), help="SE (block default)")
    parser.add_argument("--num-classes", type=int, default=10, help="classifier outputs (10)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robnas.models.scaling import ScalingRule, robust_scaling
    from robnas.models.wrn import SCALED_A, MacroConfig
    from robnas.space.budget import format_count, parse_budget

    metric, text = ("flops", args.flops) if args.flops is not None else ("params", args.params)
    target = parse_budget(text)
    base = MacroConfig((1, 1, 1), (1, 1, 1), block=args.block, activation=args.activation,
                       se=args.se)  # fmt: skip
    scaled = robust_scaling(target, metric, ScalingRule.parse(args.rule), base, args.num_classes)
    cfg, key = scaled.config, scaled.paper_key
    paper = None if key is None else {"depths": list(SCALED_A[key][0]),
                                      "widths": list(SCALED_A[key][1]), "name": key.upper()}  # fmt: skip
    if args.json:
        out = {
            "target": target,
            "metric": metric,
            "rule": args.rule,
            "config": cfg.to_dict(),
            "params": scaled.cost.params,
            "flops": scaled.cost.macs,
            "continuous": {"depths": [round(d, 3) for d in scaled.continuous_depths],
                           "widths": [round(w, 3) for w in scaled.continuous_widths]},
            "paper": paper,
        }  # fmt: skip
        print(json.dumps(out))
        return 0
    cont_d = ", ".join(f"{d:.2f}" for d in scaled.continuous_depths)
    cont_w = ", ".join(f"{w:.2f}" for w in scaled.continuous_widths)
    print(f"target        {format_count(target)} {metric} (rule {args.rule}, {args.block} blocks)")
    print(f"continuous    depths [{cont_d}]  widths [{cont_w}]")
    print(f"depths        {list(cfg.depths)}")
    print(f"widths        {list(cfg.widths)}  (channels {list(cfg.out_channels)})")
    print(f"params        {scaled.cost.params:,} ({format_count(scaled.cost.params)})")
    print(f"FLOPs (MACs)  {scaled.cost.macs:,} ({format_count(scaled.cost.macs)})")
    if paper is not None:
        print(f"paper ({paper['name']})   depths {paper['depths']}  widths {paper['widths']}")
    print(f"config        {json.dumps(cfg.to_dict())}")
    return 0
