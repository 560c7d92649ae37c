"""Parameter profiles: overlay ``profiles/<name>.yaml`` onto ``params.yaml``.

``sample`` (the default) runs the embedded world on a CPU in minutes; ``paper`` holds the paper's
datasets and settings (AM-2k, BG-20k, COCO; 1080 px; 320 px training crops; lr 1e-5; 500/100
epochs; hybrid test at 1/3 and 1/2) and expects a GPU. A profile only names the keys it changes;
comments and key order of ``params.yaml`` are kept.
"""

from __future__ import annotations

import io
from pathlib import Path

from ruamel.yaml import YAML

from gfm.core.config import parse_params
from gfm.core.io import write_text

PROFILES_DIR = Path(__file__).resolve().parents[2] / "profiles"


def available() -> list[str]:
    """Names of the profiles shipped in ``profiles/``."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def apply(name: str, params_path: str | Path = "params.yaml", profiles_dir: str | Path = PROFILES_DIR) -> dict:
    """Overlay profile ``name`` onto ``params_path`` (atomically); return the keys that changed.

    Raises ``ValueError`` for an unknown profile or a profile key that ``params.yaml`` lacks
    (a typo would otherwise silently add a knob that no stage reads), and
    :class:`gfm.core.config.ConfigError` when the result is not valid; ``params.yaml`` is then untouched.
    """
    profile_path = Path(profiles_dir) / f"{name}.yaml"
    if not profile_path.is_file():
        raise ValueError(f"unknown profile {name!r}: {profile_path} not found "
                         f"(available: {', '.join(available()) or 'none'})")
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    params_path = Path(params_path)
    params = yaml.load(params_path.read_text())
    overlay = yaml.load(profile_path.read_text()) or {}
    changed: dict = {}
    _merge(params, overlay, changed, prefix="", source=profile_path)
    parse_params(params, source=f"{params_path} + {profile_path}")
    buffer = io.StringIO()
    yaml.dump(params, buffer)
    write_text(params_path, buffer.getvalue())
    return changed


def _merge(target, overlay, changed: dict, prefix: str, source: Path) -> None:
    for key, value in overlay.items():
        dotted = f"{prefix}{key}"
        if key not in target:
            raise ValueError(f"{source}: key {dotted!r} is not in params.yaml")
        replace_whole = dotted == "train.experiments"  # a grid is replaced, not merged
        if isinstance(value, dict) and isinstance(target[key], dict) and not replace_whole:
            _merge(target[key], value, changed, prefix=f"{dotted}.", source=source)
        elif target[key] != value:
            changed[dotted] = (target[key], value)
            target[key] = value
