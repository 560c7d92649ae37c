"""This run's experiments as the paper's rows: configurations, names and labels.

An experiment is a configuration (``params.yaml`` ``train.experiments``: track, backbone, RoSTa,
decoder, PPM, bridge block). The paper's base model is GFM (Sect. 3): two decoders (glance and
focus), five PPM blocks in the glance decoder and the bridge block in the focus decoder, trained
on the ORI-Track with the TT RoSTa. Every other row of Tables 1, 4 and 5 changes some of these.

* :data:`BASE_CONFIG`, :func:`normalise` -- one configuration format (shared with the claims).
* :func:`from_params`, :func:`load_experiments` -- the grid of a Params object or a YAML file.
* :func:`parse_experiment` -- the configuration an experiment's name implies (``ori-noppm-d``).
* :func:`experiment_label` -- (track, row) of the paper, e.g. ("ORI", "GFM-TT(d) w/o PPM").
* :func:`row_group` -- a row without its backbone ("GFM-TT(d) w/o PPM" -> "GFM-TT w/o PPM").
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["BASE_CONFIG", "CONFIG_KEYS", "BACKBONE_CODES", "TRACKS", "normalise", "from_params", "load_experiments",
           "parse_experiment", "experiment_label", "row_group"]

#: The C YAML parser when libyaml is available (10x faster), else the pure-Python one; both safe.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The paper's GFM: ORI-Track, TT, two decoders, five PPM blocks, bridge block (Sect. 3, Table 4).
BASE_CONFIG = {"track": "ori", "rosta": "TT", "decoder": "two", "ppm": "five", "bridge": True}
CONFIG_KEYS = (*BASE_CONFIG, "backbone")
#: Backbone names (gfm.model.backbones) -> the paper's letters (Table 1 caption; r2b: Table 4).
BACKBONE_CODES = {"d121": "d", "r34": "r", "r101": "r†", "r34_2b": "r2b", "r18_lite": "r18-lite", "r18_slim": "r18-slim"}
#: Training tracks (params.yaml ``track``) -> the paper's track names (Table 1; Table 4 bottom rows).
TRACKS = {"ori": "ORI", "coco": "COMP-COCO", "bg20k": "COMP-BG20K", "rssn": "COMP-RSSN",
          "rssn_blur": "COMP-BG20K w/ blur", "rssn_denoise": "COMP-BG20K w/ denoise",
          "rssn_noise": "COMP-BG20K w/ noise"}

_NAME_TOKENS = {"tt": ("rosta", "TT"), "ft": ("rosta", "FT"), "bt": ("rosta", "BT"), "rim": ("rosta", "RIM"),
                "single": ("decoder", "single"), "noppm": ("ppm", "none"), "oneppm": ("ppm", "one"),
                "nobb": ("bridge", False), "d": ("backbone", "d121"), "r": ("backbone", "r34"),
                "r101": ("backbone", "r101"), "r2b": ("backbone", "r34_2b"), "lite": ("backbone", "r18_lite"),
                "slim": ("backbone", "r18_slim")}
_GFM_ROW = re.compile(r"^(GFM-[A-Z]+)\([^)]*\)")


def normalise(config: Mapping[str, Any] | None) -> dict:
    """A configuration in one format: :data:`BASE_CONFIG` for missing keys, ``rosta`` upper case,
    ``track`` / ``decoder`` / ``ppm`` lower case, ``bridge`` a bool, ``backbone`` a name or None
    (unknown). Keys other than :data:`CONFIG_KEYS` (epochs, data, ...) are dropped."""
    given = {k: v for k, v in dict(config or {}).items() if k in CONFIG_KEYS}
    merged = {**BASE_CONFIG, "backbone": None, **given}
    bridge = merged["bridge"]
    merged["bridge"] = bridge if isinstance(bridge, bool) else str(bridge).strip().lower() in ("true", "1", "yes")
    merged["rosta"] = str(merged["rosta"]).upper()
    for key in ("track", "decoder", "ppm"):
        merged[key] = str(merged[key]).lower()
    merged["backbone"] = None if merged["backbone"] in (None, "", "?") else str(merged["backbone"])
    return merged


def from_params(params) -> dict[str, dict]:
    """``params.train.experiments`` (gfm.core.config.Params) -> ``{name: normalised configuration}``."""
    return {name: normalise({key: getattr(item, key) for key in CONFIG_KEYS})
            for name, item in params.train.experiments.items()}


def load_experiments(path: str | Path) -> dict[str, dict]:
    """``train.experiments`` of a params file or profile (``profiles/paper.yaml``) -> ``{name: config}``."""
    path = Path(path)
    try:
        params = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"{path}: not a readable YAML file ({error})") from error
    experiments = (params.get("train") or {}).get("experiments") or {}
    if not isinstance(experiments, Mapping):
        raise ValueError(f"{path}: train.experiments must be a mapping of name -> configuration")
    return {name: normalise(config) for name, config in experiments.items()}


def parse_experiment(name: str) -> dict:
    """The configuration an experiment's name implies (when its configuration is not at hand).

    ``<track>-<token>...`` with track ori | coco | bg20k | rssn (``rssn-blur`` etc.: the Table 4
    ablations) and tokens tt | ft | bt | rim (RoSTa), single, noppm, oneppm, nobb, and a backbone
    d | r | r101 | r2b | lite (none: unknown backbone, e.g. the sample's ``ori-tt``).
    """
    tokens = [t for t in str(name).lower().split("-") if t]
    if not tokens or tokens[0] not in ("ori", "coco", "bg20k", "rssn"):
        raise ValueError(f"experiment {name!r}: expected a name starting with ori-, coco-, bg20k- or rssn-; "
                         f"give its configuration (train.experiments) instead")
    config = dict(BASE_CONFIG, track=tokens.pop(0))
    if config["track"] == "rssn" and tokens and tokens[0] in ("blur", "denoise", "noise"):
        config["track"] = f"rssn_{tokens.pop(0)}"
    for token in tokens:
        if token not in _NAME_TOKENS:
            raise ValueError(f"experiment {name!r}: unknown name part {token!r} (expected one of "
                             f"{sorted(_NAME_TOKENS)}); give its configuration (train.experiments) instead")
        key, value = _NAME_TOKENS[token]
        config[key] = value
    return normalise(config)


def experiment_label(config: Mapping) -> tuple[str, str]:
    """(track, row) of the paper for a configuration, e.g. ("ORI", "GFM-TT(d) w/o PPM")."""
    config = normalise(config)
    backbone = config["backbone"]
    method = f"GFM-{config['rosta']}" + (f"({BACKBONE_CODES.get(backbone, backbone)})" if backbone else "")
    if config["decoder"] == "single":
        method += " SINGLE"
    if config["ppm"] in ("none", "one"):
        method += " w/o PPM" if config["ppm"] == "none" else " one PPM"
    if not config["bridge"]:
        method += " w/o BB"
    return TRACKS.get(config["track"], config["track"]), method


def row_group(method: str) -> str:
    """A row without its backbone: "GFM-TT(d) w/o PPM" -> "GFM-TT w/o PPM" (other rows unchanged)."""
    return _GFM_ROW.sub(r"\1", method)
