"""The package's shape (issue 10): stage deps that cannot go stale, no import cycles, one-way layers.

Imports are read with :mod:`ast`, at module level and inside functions alike, starting from the code
cells of each stage's notebooks (and from ``gfm <command>`` calls in a stage's ``cmd``).
"""
from __future__ import annotations

import ast
import json
import re
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gfm"

#: Layer of each subpackage: a module imports only from strictly lower layers or its own subpackage.
LAYERS = {"core": 0, "data": 1, "model": 1, "bg20k": 2, "compose": 3, "train": 4, "evaluate": 5, "report": 6,
          "ui": 7, "": 8}
#: The modules gfm.evaluate.metrics is built from (one metric's computation each).
METRIC_PARTS = ("gfm.evaluate.gradient", "gfm.evaluate.connectivity")
#: Narrower rules: these import only from the listed subpackages/modules (and their own subpackage).
ONLY = {
    "gfm.model": ("gfm.core",),                                # the model knows no data, composition or training
    "gfm.data": ("gfm.core",),
    "gfm.evaluate.metrics": ("gfm.core", *METRIC_PARTS),       # metrics know no model
    **{part: ("gfm.core",) for part in METRIC_PARTS},
    "gfm.evaluate.fusions": ("gfm.core", "gfm.evaluate.metrics", *METRIC_PARTS),  # fusions.csv's summary
    # the report reads stage outputs, never stage code (but the metric lists and the fusions.csv summary)
    "gfm.report": ("gfm.core", "gfm.evaluate.metrics", *METRIC_PARTS, "gfm.evaluate.fusions"),
}


def module_file(name: str) -> Path | None:
    """The file of a gfm module (``gfm.core.io`` -> gfm/core/io.py), or None."""
    parts = name.split(".")[1:]
    base = PACKAGE.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imports_of(tree: ast.AST) -> set[str]:
    """The gfm modules an AST imports (anywhere in it), resolved to modules that exist."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name == "gfm" or name.startswith("gfm."):
                while name and module_file(name) is None:
                    name = name.rpartition(".")[0]
                if name:
                    found.add(name)
    return {m for m in found for m in _with_parents(m)}


def _with_parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


@lru_cache(maxsize=None)
def direct_imports(name: str) -> frozenset[str]:
    path = module_file(name)
    return frozenset(imports_of(ast.parse(path.read_text(), str(path))) - {name})


def reach(start: set[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(direct_imports(name))
    return seen


def all_modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        names.append(".".join(parts))
    return names


def notebook_imports(path: Path) -> set[str]:
    cells = json.loads(path.read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    lines = source.splitlines()
    shell_gfm = any(re.match(r"\s*!\s*(\S*/)?gfm\s", line) for line in lines)
    source = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
    return imports_of(ast.parse(source, str(path))) | ({"gfm", "gfm.cli"} if shell_gfm else set())


def stages() -> dict[str, dict]:
    """Each stage of dvc.yaml (``foreach`` stages once, by their template) -> {cmd, deps}."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    variables = {k: v for entry in spec.get("vars", []) if isinstance(entry, dict) for k, v in entry.items()}
    stages = {}
    for name, stage in spec["stages"].items():
        stage = dict(stage.get("do", stage))
        stage["cmd"] = re.sub(r"\$\{(\w+)\}", lambda m: str(variables.get(m.group(1), m.group(0))), stage["cmd"])
        stages[name] = stage
    return stages


def stage_modules(stage: dict) -> set[str]:
    """The gfm modules a stage runs: its notebooks' imports and ``gfm`` commands, transitively."""
    start = set()
    for nb in re.findall(r"(?<!reports/)(notebooks/\S+?\.ipynb)", stage["cmd"]):
        start |= notebook_imports(ROOT / nb)
    if re.search(r"(^|&&|;)\s*gfm\s", stage["cmd"]):
        start.add("gfm.cli")
    start |= {m for m in re.findall(r"python -m (gfm[\w.]*)", stage["cmd"]) if module_file(m)}
    return reach(start)


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d.rstrip("/") or rel.startswith(d.rstrip("/") + "/") for d in deps)


def layer(name: str) -> tuple[str, int]:
    parts = name.split(".")
    sub = parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else ""
    return sub, LAYERS.get(sub, LAYERS[""])


@pytest.mark.parametrize("name", sorted(stages()))
def test_stage_deps_cover_every_module_it_runs(name):
    stage = stages()[name]
    deps = [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]
    modules = stage_modules(stage)
    assert modules, f"stage {name}: runs no gfm module?"
    missing = sorted(m for m in modules if not covered(module_file(m), deps))
    assert not missing, f"dvc.yaml stage {name}: deps do not cover {missing}"
    for nb in re.findall(r"(?<!reports/)(notebooks/\S+?\.ipynb)", stage["cmd"]):
        assert nb in deps, f"dvc.yaml stage {name}: its notebook {nb} is not a dep"


def test_no_import_cycles():
    graph = {m: direct_imports(m) for m in all_modules()}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt in _with_parents(node):  # a module importing its own package's __init__ is no cycle
                continue
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("name", all_modules())
def test_imports_flow_one_way(name):
    sub, level = layer(name)
    for target in direct_imports(name):
        if target in _with_parents(name) or target == "gfm":
            continue
        tsub, tlevel = layer(target)
        if tsub == sub:
            continue
        assert tlevel < level, f"{name} (layer {sub or 'app'}) imports {target} (layer {tsub or 'app'})"


@pytest.mark.parametrize("prefix", sorted(ONLY))
def test_narrow_modules_reach_only_what_they_may(prefix):
    """What a narrow module reaches, through any chain of imports (its own subpackage included)."""
    allowed = ONLY[prefix]
    for name in (m for m in all_modules() if m == prefix or m.startswith(prefix + ".")):
        for target in reach({name}) - {name}:
            if target in _with_parents(name) or target == "gfm" or target.startswith(prefix + "."):
                continue
            assert any(target == a or target.startswith(a + ".") or a.startswith(target + ".") for a in allowed), \
                f"{name} reaches {target}; it may import only {allowed}"


#: Modules where a gfm import inside a function is allowed: the CLI and the `gfm matte` parser it builds
#: start without importing torch (0.35 s instead of 11 s for `gfm profile`).
LAZY_OK = ("gfm.cli", "gfm.matte")


@pytest.mark.parametrize("name", all_modules())
def test_no_relative_and_no_function_level_gfm_imports(name):
    """Relative imports would hide from this walker; a gfm import inside a function hides a cycle."""
    tree = ast.parse(module_file(name).read_text())
    relative = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert not relative, f"{name}: relative imports at lines {relative}; import gfm.* absolutely"
    if name in LAZY_OK:
        return
    nested = [n.lineno for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom)) and imports_of(n)]
    assert not nested, f"{name}: gfm imported inside a function at lines {sorted(set(nested))}"


def test_only_ui_imports_ipywidgets():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "ui" in path.relative_to(PACKAGE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m.split(".")[0] == "ipywidgets" for m in mods):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, f"ipywidgets imported outside gfm/ui: {offenders}"


def test_subpackage_inits_import_nothing():
    for init in [PACKAGE / "__init__.py", *PACKAGE.glob("*/__init__.py")]:
        tree = ast.parse(init.read_text())
        assert not [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], \
            f"{init.relative_to(ROOT)} imports: keep subpackage __init__ files free of imports"


def test_walker_sees_function_level_imports(tmp_path):
    tree = ast.parse("def f():\n    from gfm.core.io import write_json\n    import gfm.model.network\n")
    assert {"gfm.core.io", "gfm.model.network"} <= imports_of(tree)


def test_stage_metrics_paths_are_the_configs():
    """dvc.yaml declares one metrics file, the paper stage's headline (what ``dvc metrics show`` and
    ``dvc exp show`` print); every stage's own metrics file is an output of that stage; gfm.core.config
    holds the paths."""
    from gfm.core.config import load_params

    params = load_params(ROOT / "params.yaml")
    declared = {name: [next(iter(m)) if isinstance(m, dict) else m for m in stage.get("metrics", [])]
                for name, stage in stages().items()}
    assert {name: files for name, files in declared.items() if files} == {"paper": [params.report.headline_out]}
    outs = {name: [next(iter(o)) if isinstance(o, dict) else o
                   for o in (stage.get("do", stage).get("outs", []))] for name, stage in stages().items()}
    assert params.data.metrics_out in outs["download"]
    assert params.bg20k.metrics_out in outs["bg20k"]
    assert params.compose.metrics_out in outs["compose"]
    assert params.evaluate.metrics_out in outs["evaluate"]
    assert params.report.findings_out in outs["paper"]
    assert "${train.metrics_dir}/${key}.json" in outs["train"]
    assert params.train.metrics_path("x") == f"{params.train.metrics_dir}/x.json"


def test_train_stage_tracks_every_shared_training_knob():
    """Each train@<experiment> stage lists every knob of the train section but the grid, and each is
    written in params.yaml (dvc tracks only keys it finds there)."""
    import dataclasses

    from gfm.core.config import TrainStageConfig

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    knobs = {f.name for f in dataclasses.fields(TrainStageConfig)} - {"experiments"}
    listed = {k.split(".", 1)[1] for k in stages()["train"]["params"] if k.startswith("train.")}
    assert knobs - set(raw["train"]) == set(), "params.yaml: train knobs missing"
    assert knobs - listed == set(), "dvc.yaml train stage: params do not list these train knobs"
