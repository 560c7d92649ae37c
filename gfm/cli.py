"""The ``gfm`` command line.

    gfm profile paper|sample          overlay a parameter profile onto params.yaml
    gfm world build [--out data] ...  (re)generate the embedded world
    gfm matte IMAGE_OR_DIR ... --checkpoint PATH --out DIR   alpha mattes and cut-outs
    gfm html NOTEBOOK_DIR OUT_DIR     offline HTML reports of executed notebooks + index
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gfm", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    profile = commands.add_parser("profile", help="overlay profiles/<name>.yaml onto params.yaml")
    profile.add_argument("name", help="paper | sample")
    profile.add_argument("--params", default="params.yaml")
    profile.set_defaults(run=_profile)

    world = commands.add_parser("world", help="the embedded (synthetic) world")
    world_commands = world.add_subparsers(dest="world_command", required=True)
    build = world_commands.add_parser("build", help="generate the world from a seed")
    build.add_argument("--out", default="data")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--n-train", type=int, default=None)
    build.add_argument("--n-val", type=int, default=None)
    build.add_argument("--n-candidates", type=int, default=None)
    build.add_argument("--n-coco", type=int, default=None)
    build.add_argument("--short-side", type=int, default=None)
    build.add_argument("--long-side", type=int, default=None)
    build.set_defaults(run=_world_build)

    from gfm.matte import add_matte_parser

    add_matte_parser(commands)

    html = commands.add_parser("html", help="offline HTML reports of executed notebooks, with an index")
    html.add_argument("notebooks", help="folder of executed notebooks (reports/notebooks)")
    html.add_argument("out", help="output folder (reports/html)")
    html.add_argument("--metrics", default="metrics", help="folder of metrics JSON files")
    html.add_argument("--models", default="artifacts/models", help="folder of training runs (losses.csv)")
    html.set_defaults(run=_html)

    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError) as error:
        print(f"gfm {args.command}: error: {error}", file=sys.stderr)
        return 2


def _profile(args) -> int:
    from gfm.core import profiles

    changed = profiles.apply(args.name, args.params)
    print(f"{args.params}: profile {args.name!r} applied, {len(changed)} value(s) changed")
    for key, (old, new) in changed.items():
        print(f"  {key}: {_short(old)} -> {_short(new)}")
    return 0


def _world_build(args) -> int:
    from gfm.data.world import build_world

    sizes = {k: v for k, v in vars(args).items()
             if k in ("n_train", "n_val", "n_candidates", "n_coco", "short_side", "long_side") and v is not None}
    manifest = build_world(args.out, seed=args.seed, **sizes)
    print(f"{args.out}: embedded world built (seed {args.seed}): "
          + ", ".join(f"{k}={v}" for k, v in manifest.get("counts", {}).items()))
    print("pin it with: dvc commit -f data.dvc")
    return 0


def _html(args) -> int:
    from pathlib import Path

    from gfm.report import html

    notebooks = sorted(Path(args.notebooks).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"{args.notebooks}: no executed notebooks")
    index = html.build_reports(notebooks, args.out, metrics=html.collect_metrics(args.metrics),
                               plots=html.loss_plots_svg(args.models))
    print(f"{index}: {len(notebooks)} report(s)")
    return 0


def _short(value) -> str:
    text = str(value)
    return text if len(text) < 60 else text[:57] + "..."


if __name__ == "__main__":
    sys.exit(main())
