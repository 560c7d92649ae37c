"""Checked values for typed parameters: the small validation kit behind :mod:`gfm.core.config`.

A checker is a callable ``check(value, ctx, key)`` that returns the typed value or raises
:class:`Invalid` (one problem with one value); :class:`Context` collects every problem of a file so
that :class:`ConfigError` reports them all at once, each naming the file and the dotted key.
:func:`knob` makes a dataclass field carry its checker, its optional default and its documentation.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ConfigError", "Invalid", "Recorded", "Context", "kind", "got", "suggest", "Str", "Int", "Float",
           "Bool", "OptionalOf", "ListOf", "knob", "FrozenMapping"]

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

class ConfigError(ValueError):
    """Invalid parameters. One line per problem, each naming the file and the dotted key.

    ``errors`` holds the ``(dotted key, problem)`` pairs, ``source`` the file, ``key`` the first key.
    """

    def __init__(self, source: str, errors):
        self.source = str(source)
        self.errors = tuple((str(k), str(p)) for k, p in errors)
        self.key = self.errors[0][0] if self.errors else ""
        super().__init__("\n".join(f"{self.source}: {k}: {p}" if k else f"{self.source}: {p}"
                                   for k, p in self.errors))


class Invalid(Exception):
    """One problem with one value (``sub`` extends the dotted key, e.g. ``[2]``)."""

    def __init__(self, problem: str, sub: str = ""):
        super().__init__(problem)
        self.problem, self.sub = problem, sub


class Recorded(Exception):
    """A nested section failed; its errors are already recorded."""


class Context:
    def __init__(self, source: str):
        self.source = source
        self.errors: list[tuple[str, str]] = []

    def error(self, key: str, problem: str) -> None:
        self.errors.append((key, problem))


# --------------------------------------------------------------------------------------------
# Value checkers: check(value, ctx, key) -> the typed value, or raise Invalid
# --------------------------------------------------------------------------------------------

def kind(value) -> str:
    if value is None:
        return "null"
    return {bool: "bool", int: "integer", float: "float", str: "string", list: "list", tuple: "list",
            dict: "mapping"}.get(type(value), "mapping" if isinstance(value, Mapping) else type(value).__name__)


def got(value) -> str:
    return f"got {kind(value)} {value!r}" if value is not None else "got null"


def suggest(word, known) -> str:
    match = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def number_word(text: str):
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Str:
    choices: tuple | None = None
    pattern: re.Pattern | None = None
    what: str = ""

    def __call__(self, value, ctx=None, key=""):
        if not isinstance(value, str):
            raise Invalid(f"expected a string, {got(value)}")
        if not value.strip():
            raise Invalid("must not be empty")
        if self.choices is not None and value not in self.choices:
            raise Invalid(f"must be one of {', '.join(self.choices)}; got {value!r}{suggest(value, self.choices)}")
        if self.pattern is not None and not self.pattern.fullmatch(value):
            raise Invalid(f"{value!r} is not {self.what}")
        return value

    def token(self, text: str):
        return text


@dataclass(frozen=True)
class Int:
    min: int | None = None
    multiple: int | None = None

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                raise Invalid(f"expected an integer, got float {value!r} (write {int(value)})")
            if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
                raise Invalid(f"expected an integer, got string {value!r} (remove the quotes)")
            raise Invalid(f"expected an integer, {got(value)}")
        if self.min is not None and value < self.min:
            raise Invalid(f"must be >= {self.min}, got {value}")
        if self.multiple and value % self.multiple:
            raise Invalid(f"must be a multiple of {self.multiple}, got {value}")
        return value

    def token(self, text: str):
        if not re.fullmatch(r"[-+]?\d+", text):
            raise Invalid(f"expected an integer, got {text!r}")
        return int(text)


@dataclass(frozen=True)
class Float:
    min: float | None = None
    max: float | None = None
    min_open: bool = False
    max_open: bool = False

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, str) and number_word(value) is not None:
                hint = "; a YAML 1.1 reader takes 1e-5 for a string, write 1.0e-5" if "e" in value.lower() else ""
                raise Invalid(f"expected a number, got string {value!r} (remove the quotes{hint})")
            raise Invalid(f"expected a number, {got(value)}")
        value = float(value)
        if not math.isfinite(value):
            raise Invalid(f"must be a finite number, got {value}")
        low = self.min is not None and (value <= self.min if self.min_open else value < self.min)
        high = self.max is not None and (value >= self.max if self.max_open else value > self.max)
        if low or high:
            raise Invalid(f"must be {self._range()}, got {value:g}")
        return value

    def _range(self) -> str:
        if self.max is None:
            return f"{'>' if self.min_open else '>='} {self.min:g}"
        return f"in {'(' if self.min_open else '['}{self.min:g}, {self.max:g}{')' if self.max_open else ']'}"

    def token(self, text: str):
        number = number_word(text)
        if number is None:
            raise Invalid(f"expected a number, got {text!r}")
        return number


@dataclass(frozen=True)
class Bool:
    def __call__(self, value, ctx=None, key=""):
        if not isinstance(value, bool):
            raise Invalid(f"expected a YAML bool (true or false), {got(value)}")
        return value


@dataclass(frozen=True)
class OptionalOf:
    inner: Any

    def __call__(self, value, ctx=None, key=""):
        return None if value is None else self.inner(value, ctx, key)


@dataclass(frozen=True)
class ListOf:
    """A YAML list (or the legacy comma-separated string) -> tuple of checked items."""

    item: Any
    min_len: int = 1
    unique: bool = False
    none_word: bool = False            # legacy: the string "none" means the empty list

    def __call__(self, value, ctx=None, key=""):
        if isinstance(value, str):     # legacy "a,b,c"
            if self.none_word and value.strip().lower() == "none":
                items = []
            else:
                items = []
                for i, text in enumerate(t.strip() for t in value.split(",") if t.strip()):
                    try:
                        items.append(self.item.token(text))
                    except Invalid as error:
                        raise Invalid(error.problem, f"[{i}]") from None
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise Invalid(f"expected a list (e.g. [a, b]), {got(value)}")
        out = []
        for i, item in enumerate(items):
            try:
                out.append(self.item(item, ctx, f"{key}[{i}]"))
            except Invalid as error:
                raise Invalid(error.problem, f"[{i}]{error.sub}") from None
        if len(out) < self.min_len:
            raise Invalid(f"must hold at least {self.min_len} item{'s' if self.min_len > 1 else ''}, got {value!r}")
        if self.unique:
            seen = [x for i, x in enumerate(out) if x in out[:i]]
            if seen:
                raise Invalid(f"{seen[0]!r} is listed twice")
        return tuple(out)




def knob(check, default=dataclasses.MISSING, doc: str = ""):
    """A dataclass field checked by ``check``; a ``default`` makes it optional."""
    return field(default=default, metadata={"check": check, "doc": doc})


class FrozenMapping(Mapping):
    """A read-only, hashable, ordered mapping (``train.experiments``)."""

    __slots__ = ("_data",)

    def __init__(self, data=()):
        object.__setattr__(self, "_data", dict(data))

    def __setattr__(self, name, value):
        raise AttributeError("FrozenMapping is read-only")

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)

    def __hash__(self):
        return hash(frozenset(self._data.items()))

    def __repr__(self):
        return f"FrozenMapping({self._data!r})"

