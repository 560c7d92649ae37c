"""The ``gfm`` command line.

    gfm profile paper|sample          overlay a parameter profile onto params.yaml
    gfm world build [--out data] ...  (re)generate the embedded world
    gfm matte IMAGE_OR_DIR ... --checkpoint PATH --out DIR   alpha mattes and cut-outs (:mod:`gfm.matte`)
    gfm fetch-checkpoint NAME ... [--out checkpoints] [--lock data.lock.json] [--list]
                                      the released GFM checkpoints (Table 1 / Table 5), downloaded and
                                      verified by stage 1's :func:`gfm.data.materialise.download`
    gfm html NOTEBOOK_DIR OUT_DIR     offline HTML reports of executed notebooks + index
    gfm --version

Usage errors print one line (``gfm <command>: error: ...``) and exit with 2; an interrupt (Ctrl-C)
prints one line and exits with 130. ``gfm fetch-checkpoint`` exits with 1 when a download failed
(one line per checkpoint, naming the URL and the problem).
"""

from __future__ import annotations

import argparse
import inspect
import shlex
import signal
import sys
import warnings
from pathlib import Path

import gfm

WORLD_SIZES = ("n_train", "n_val", "n_candidates", "n_coco", "short_side", "long_side")
#: Exit code of ``gfm fetch-checkpoint`` when a download failed (usage errors exit with 2).
EXIT_FETCH_FAILED = 1


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
    name = profile.add_argument("name", help="profile name: one of %(shipped)s")
    name.shipped = _ShippedProfiles()  # listed when the help is shown, not at every gfm start
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

    checkpoints = commands.add_parser("fetch-checkpoint",
                                      help="download the released GFM checkpoints for gfm matte --official",
                                      description="Download the released GFM checkpoints (Table 1 / Table 5 of the "
                                                  "paper), verified, for gfm matte --official.",
                                      epilog=_FETCH_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    checkpoints.add_argument("names", nargs="*", metavar="NAME",
                             help="a released checkpoint: its registry name (gfm_r34_tt) or its gfm matte --official "
                                  "spec (r34-tt); see --list")
    checkpoints.add_argument("--out", default="checkpoints", metavar="DIR",
                             help="folder the checkpoints are written to, created if needed (default: %(default)s)")
    checkpoints.add_argument("--lock", default="data.lock.json", metavar="FILE",
                             help="lock file of sha256s, shared with stage 1 (params.yaml data.lock_file): a first "
                                  "download records its sha256 there, later ones are verified against it "
                                  "(default: %(default)s)")
    checkpoints.add_argument("--list", action="store_true",
                             help="list the released checkpoints (all, or the NAMEs given) and exit (default: off)")
    checkpoints.set_defaults(run=_fetch_checkpoint)

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


def _fetch_checkpoint(args) -> int:
    """``gfm fetch-checkpoint``: list the released checkpoints, or fetch each one named (a failure is
    reported on one line and the others are still fetched)."""
    from gfm.data import registry

    if not args.names and not args.list:
        raise ValueError("name at least one checkpoint (e.g. r34-tt), or pass --list to see them")
    chosen = _checkpoint_sources(args.names) if args.names else _released()
    if args.list:
        _list_checkpoints(chosen, args.lock)
        return 0
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a folder")
    registry.read_lock(args.lock)  # a broken lock file is a usage error, found before any download
    failed = 0
    for source in chosen:
        try:
            _fetch_one(source, out, args.lock)
        except (ValueError, OSError) as error:  # DataError is a ValueError, requests' errors are OSErrors
            text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
            where = f" ({' or '.join(source.urls)})" if isinstance(error, OSError) else ""
            print(f"gfm {args.command}: error: {source.name}{where}: {text}", file=sys.stderr)
            failed += 1
    return EXIT_FETCH_FAILED if failed else 0


def _html(args) -> int:
    from gfm.report import html

    index = html.build_site(args.notebooks, args.out, metrics_dir=args.metrics, models_dir=args.models)
    print(f"{index}: {len(list(Path(args.notebooks).glob('*.ipynb')))} report(s)")
    return 0


class _ShippedProfiles:
    """The names of the profiles shipped in ``profiles/`` (:func:`gfm.core.profiles.available`) as text,
    read when ``gfm profile --help`` formats them: building the parser imports no YAML library."""

    def __str__(self) -> str:
        from gfm.core.profiles import available

        return ", ".join(available())


def _released() -> list:
    """The released checkpoints of the registry (:data:`gfm.data.registry.REGISTRY`), in its order."""
    from gfm.data.registry import REGISTRY

    return [source for source in REGISTRY.values() if source.kind == "checkpoint"]


def _spec(source) -> str:
    """The ``gfm matte --official`` spec of a released checkpoint (``r34-tt``)."""
    return f"{source.backbone}-{source.rosta.lower()}"


def _checkpoint_sources(names: list[str]) -> list:
    """The released checkpoints named by registry name or ``--official`` spec (any case), each once;
    an unknown name is a usage error listing the valid ones."""
    released = _released()
    known = {source.name: source for source in released} | {_spec(source): source for source in released}
    unknown = [name for name in names if name.lower() not in known]
    if unknown:
        raise ValueError(f"unknown checkpoint {', '.join(map(repr, unknown))}; known: "
                         + ", ".join(f"{source.name} ({_spec(source)})" for source in released))
    return list(dict.fromkeys(known[name.lower()] for name in names))


def _list_checkpoints(chosen: list, lock_file: str) -> None:
    """One row per checkpoint: name, ``--official`` spec, checksum state, paper, licence, page."""
    from gfm.data import registry

    rows = [("NAME", "--official", "SHA256", "PAPER", "LICENCE", "PAGE")]
    for source in chosen:
        state = ("pinned" if source.sha256 else
                 "locked" if registry.locked(lock_file, source.name).get(source.filename) else "unknown")
        rows.append((source.name, _spec(source), state, source.paper, source.licence, source.page))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print(f"SHA256: pinned = given in the registry; locked = recorded in {lock_file} by a first download; "
          f"unknown = not known yet, the first download records it")


def _fetch_one(source, out: Path, lock_file: str) -> None:
    """Fetch one released checkpoint into ``out`` with :func:`gfm.data.materialise.download` (a copy
    already there is verified, not fetched again) and print where it is, its sha256 and the
    ``gfm matte`` line that uses it."""
    from gfm.data import materialise, registry

    before = registry.locked(lock_file, source.name).get(source.filename)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _warn_on_one_line
        root = materialise.download([source], out, lock_file=lock_file, progress=sys.stderr.isatty())[source.name]
    path = _checkpoint_file(source, Path(root))
    sha256 = source.sha256 or registry.locked(lock_file, source.name)[source.filename]
    how = ("verified against the registry" if source.sha256 else f"verified against {lock_file}" if before
           else f"recorded in {lock_file} (first download; commit it)")
    strategy = " --strategy rim" if source.rosta == "RIM" else ""
    print(f"{path}: {source.name}, {source.title}")
    print(f"  sha256 of {out / source.filename}: {sha256}, {how}")
    print(f"  gfm matte IMAGE_OR_DIR --official {_spec(source)} --checkpoint {shlex.quote(str(path))}{strategy} "
          f"--out mattes")


def _checkpoint_file(source, root: Path) -> Path:
    """The checkpoint of a download: the downloaded file, or the one file matching the source's
    layout in the archive it was unpacked from."""
    if root.is_file():
        return root
    pattern = source.layout[0][0]
    found = sorted(path for path in root.rglob(pattern) if path.is_file())
    if len(found) != 1:
        raise ValueError(f"{root}: expected one {pattern} unpacked from {source.filename}, found {len(found)}")
    return found[0]


def _warn_on_one_line(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"gfm fetch-checkpoint: warning: {message}", file=sys.stderr)


_FETCH_EPILOG = """\
examples:
  gfm fetch-checkpoint --list
  gfm fetch-checkpoint r34-tt
  gfm fetch-checkpoint gfm_r34_2b_tt d121-rim --out checkpoints

Each checkpoint lands in --out only once complete and checked (its length, that it is a torch
checkpoint and not an HTML page, its sha256 when the registry or --lock knows it); an interrupted
HTTP download is kept as <file>.part and resumed next time. The official release publishes no
checksum: the first download records its sha256 in --lock (commit it), later ones must match it.
A checkpoint Google Drive refuses (quota) can be downloaded by hand from its page (see --list) and
placed in --out under its name: the next run checks it like a download and records its sha256.

exit codes: 0 every checkpoint fetched, 1 some downloads failed (each named on stderr),
2 usage error (unknown name: nothing is fetched), 130 interrupted.
"""


def _short(value) -> str:
    text = str(value)
    return text if len(text) < 60 else text[:57] + "..."


if __name__ == "__main__":
    sys.exit(main())
