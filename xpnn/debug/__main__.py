"""``python -m xpnn.debug compare --model mlp|cnn|lstm --devices cpu,torch:cpu,jax:cpu
[--passes on|off|both]``: build a small model (``models.py``), compare its forward and
backward nodes across the devices, print the report; exit status 1 where they disagree
(2 for a bad option or a device that cannot run here)."""

from __future__ import annotations

import argparse
import sys

from ..devices import COMPARED
from .compare import compare_backends
from .models import MODELS, build

PASSES = {"on": True, "off": False, "both": "both"}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m xpnn.debug",
                                  description="find where xpnn's backends disagree")
    commands = top.add_subparsers(dest="command", required=True)
    compare = commands.add_parser(
        "compare", help="run a small model on several devices and name the first node "
                        "whose value differs")
    compare.add_argument("--model", choices=MODELS, default="mlp")
    compare.add_argument("--devices", default=",".join(COMPARED),
                         help="comma-separated device strings ('cpu', 'cuda', 'device1'), "
                              "'backend:device' pairs or backends (see xn.devices.named)")
    compare.add_argument("--passes", choices=list(PASSES), default="on",
                         help="on: each device's passes; off: the portable plans; both: "
                              "each device both ways")
    compare.add_argument("--batch", type=int, default=8, help="rows in the batch")
    compare.add_argument("--seed", type=int, default=0, help="for the weights and the data")
    return top


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    names = [d.strip() for d in args.devices.split(",") if d.strip()]
    graph, loss, feed = build(args.model, batch=args.batch, seed=args.seed)
    try:
        report = compare_backends(loss, feed, devices=names, graph=graph,
                                  passes=PASSES[args.passes])
    except (ValueError, RuntimeError, TypeError) as exc:  # a device not installed here
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"model {args.model}, batch {args.batch}: {report}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
