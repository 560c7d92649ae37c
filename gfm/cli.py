"""The ``gfm`` command line.

    gfm profile paper|sample          overlay a parameter profile onto params.yaml
    gfm world build [--out data] ...  (re)generate the embedded world
    gfm matte IMAGE_OR_DIR ... --checkpoint PATH --out DIR   alpha mattes and cut-outs (:mod:`gfm.matte`)
    gfm html NOTEBOOK_DIR OUT_DIR     offline HTML reports of executed notebooks + index
    gfm --version

Usage errors print one line (``gfm <command>: error: ...``) and exit with 2; an interrupt (Ctrl-C)
prints one line and exits with 130.
"""

from __future__ import annotations

import argparse
import inspect
import signal
import sys

import gfm

WORLD_SIZES = ("n_train", "n_val", "n_candidates", "n_coco", "short_side", "long_side")


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the command -> exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError) as error:
        print(f"gfm {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gfm {args.command}: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT


def build_parser() -> argparse.ArgumentParser:
    """The ``gfm`` argument parser with every sub-command."""
    parser = _Parser(prog="gfm", description="Command line of gfm-companion, the reproducible companion to the "
                                             "GFM matting paper (Li et al., IJCV 2022).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {gfm.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    profile = commands.add_parser("profile", help="overlay profiles/<name>.yaml onto params.yaml",
                                  description="Overlay a parameter profile (profiles/<name>.yaml) onto params.yaml.")
    profile.add_argument("name", help="profile name: paper or sample")
    profile.add_argument("--params", default="params.yaml", help="parameter file to update (default: %(default)s)")
    profile.set_defaults(run=_profile)

    world = commands.add_parser("world", help="the embedded (synthetic) world",
                                description="The embedded (synthetic) world the sample profile runs on.")
    world_commands = world.add_subparsers(dest="world_command", required=True, metavar="ACTION")
    build = world_commands.add_parser("build", help="generate the world from a seed",
                                      description="Generate the embedded world from a seed, replacing a previous "
                                                  "world in the output folder in one rename.")
    defaults = _world_defaults()
    build.add_argument("--out", default="data", help="output folder (default: %(default)s)")
    build.add_argument("--seed", type=int, default=defaults["seed"], help="the world's seed (default: %(default)s)")
    for name, text in (("n_train", "real photos in the training split"),
                       ("n_val", "real photos in the validation split"),
                       ("n_candidates", "BG-20k-like background candidates, at least 6"),
                       ("n_coco", "COCO-like backgrounds"),
                       ("short_side", "shorter side of the real photos, in pixels"),
                       ("long_side", "longer side of the real photos, in pixels")):
        build.add_argument(f"--{name.replace('_', '-')}", type=int, default=defaults[name], help=f"{text} "
                           f"(default: %(default)s)")
    build.set_defaults(run=_world_build)

    from gfm.matte import add_matte_parser

    add_matte_parser(commands)

    html = commands.add_parser("html", help="offline HTML reports of executed notebooks, with an index",
                               description="Offline HTML reports of executed notebooks, with an index page.")
    html.add_argument("notebooks", help="folder of executed notebooks, e.g. reports/notebooks")
    html.add_argument("out", help="output folder, e.g. reports/html")
    html.add_argument("--metrics", default="metrics", help="folder of metrics JSON files (default: %(default)s)")
    html.add_argument("--models", default="artifacts/models",
                      help="folder of training runs, for their losses.csv (default: %(default)s)")
    html.set_defaults(run=_html)
    return parser


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (sub-parsers inherit the class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _world_defaults() -> dict:
    """The defaults of :func:`gfm.data.world.build_world` (one place for them)."""
    from gfm.data.world import build_world

    parameters = inspect.signature(build_world).parameters
    return {name: parameters[name].default for name in ("seed", *WORLD_SIZES)}


def _profile(args) -> int:
    from gfm.core import profiles

    changed = profiles.apply(args.name, args.params)
    print(f"{args.params}: profile {args.name!r} applied, {len(changed)} value(s) changed")
    for key, (old, new) in changed.items():
        print(f"  {key}: {_short(old)} -> {_short(new)}")
    return 0


def _world_build(args) -> int:
    from gfm.data.world import build_world

    manifest = build_world(args.out, seed=args.seed, **{k: getattr(args, k) for k in WORLD_SIZES})
    print(f"{args.out}: embedded world built (seed {args.seed}): "
          + ", ".join(f"{k}={v}" for k, v in manifest.get("counts", {}).items()))
    print("pin it with: dvc commit -f data.dvc")
    return 0


def _html(args) -> int:
    from pathlib import Path

    from gfm.report import html

    index = html.build_site(args.notebooks, args.out, metrics_dir=args.metrics, models_dir=args.models)
    print(f"{index}: {len(list(Path(args.notebooks).glob('*.ipynb')))} report(s)")
    return 0


def _short(value) -> str:
    text = str(value)
    return text if len(text) < 60 else text[:57] + "..."


if __name__ == "__main__":
    sys.exit(main())
