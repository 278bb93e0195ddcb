"""Type checks for settings read from a config file (YAML), against a dataclass's annotations.

Every config loader (`instructrec.config.RunConfig`, `training.config.TrainConfig`,
`training.tune.TuneConfig`, `instructions.config.InstructionConfig`) passes each value it reads
through `check_value` (or a whole mapping through `check_mapping`) before anything is built or
written, so ``lr: fast`` or ``epochs: two`` is one `DataError` naming the file and the key
instead of a traceback halfway through a run. Rules:

- ``bool`` fields take only ``true``/``false`` (not 0/1, not "yes");
- ``int`` fields take integers (not booleans, not 1.5, not "2");
- ``float`` fields take finite numbers; a string that reads as one (YAML 1.1 reads ``1e-3``
  as a string) is converted, anything else (``fast``, ``.nan``, ``.inf``) is refused;
- ``str`` fields take strings; ``list[T]`` a list whose items are ``T``; ``dict`` a mapping;
- ``X | None`` also takes ``null``; ``Any`` and unannotated fields take anything.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any

from .errors import DataError


def field_types(cls) -> dict[str, Any]:
    """{field name: resolved annotation} of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _describe(hint) -> str:
    if hint is type(None):
        return "null"
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if origin in (list, tuple):
        args = typing.get_args(hint)
        return f"a list of {_plural(args[0])}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    names = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _plural(hint) -> str:
    if typing.get_origin(hint) in (list, tuple):
        args = typing.get_args(hint)
        return f"lists of {_plural(args[0])}" if args else "lists"
    names = {bool: "booleans", int: "integers", float: "numbers", str: "strings", dict: "mappings"}
    return names.get(hint, _describe(hint))


def _kind(value) -> str:
    if value is None:
        return "null"
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    kinds.update({list: "a list", dict: "a mapping"})
    return kinds.get(type(value), type(value).__name__)


class _Mismatch(Exception):
    pass


def _convert(value, hint):
    """``value`` as ``hint`` wants it; `_Mismatch` when it is not of that type."""
    if hint is Any or hint is object:
        return value
    if hint is type(None):
        if value is None:
            return None
        raise _Mismatch
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(hint):
            try:
                return _convert(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if origin is typing.Literal:
        if value in typing.get_args(hint):
            return value
        raise _Mismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if hint is int:  # numbers.Integral: numpy integers too (a seed from an array)
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise _Mismatch
    if hint is float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _Mismatch from None
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:  # an integer beyond any float
                raise _Mismatch from None
            if math.isfinite(value):
                return value
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        raise _Mismatch
    if origin in (list, tuple) or hint in (list, tuple):
        if not isinstance(value, list | tuple):
            raise _Mismatch
        args = typing.get_args(hint)
        item = args[0] if args else Any
        return [_convert(v, item) for v in value]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return dict(value)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        raise _Mismatch
    return value  # an annotation we do not check


def check_value(value, hint, key: str, source: str | None = None):
    """``value`` checked against annotation ``hint`` (a float string becomes a float).

    Raises `DataError` naming ``source`` (the file) and ``key`` (e.g. ``training.lr``)."""
    try:
        return _convert(value, hint)
    except _Mismatch:
        shown = repr(value)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        raise DataError(
            f"{key} must be {_describe(hint)}, got {_kind(value)} ({shown})",
            source=source,
            column=key,
        ) from None


def check_mapping(
    cls, d, source: str | None = None, prefix: str = "", skip=(), what: str = "setting"
) -> dict:
    """The values of mapping ``d`` checked against dataclass ``cls``'s fields.

    Unknown keys are refused (naming the first); keys in ``skip`` are left to the caller
    (nested sections). Returns a new dict."""
    if not isinstance(d, dict):
        where = prefix.rstrip(".") or "the file"
        raise DataError(
            f"{where} must be a mapping of {what}s, got {_kind(d)}",
            source=source,
            column=prefix.rstrip(".") or None,
        )
    hints = field_types(cls)
    unknown = sorted(str(k) for k in d if k not in hints)
    if unknown:
        raise DataError(
            f"unknown {what}(s) {[prefix + u for u in unknown]}; expected some of {sorted(hints)}",
            source=source,
            column=prefix + unknown[0],
        )
    return {
        k: v if k in skip else check_value(v, hints[k], prefix + k, source) for k, v in d.items()
    }
