"""The one config loader: a typed config dataclass from a YAML file, a mapping, and
``--set SECTION.KEY=VALUE`` overrides.

    cfg = load_config(RunConfig, "configs/quickstart.yaml", ["training.lr=5e-4"])
    cfg = build_config(TrainConfig, {"lr": 1e-3}, source="run.yaml")
    cfg = apply_overrides(cfg, ["reranker.copies=1"])

Every config class (`instructrec.config.RunConfig`, `training.config.TrainConfig`,
`training.tune_config.TuneConfig`, `instructions.config.InstructionConfig`,
`instructions.teacher.TeacherConfig`, ...) is read by these three functions: each value is
checked against the field's annotation before anything is built or written, so ``lr: fast``,
``epochs: two`` or an unknown key is one `DataError` naming the file and the key instead of a
traceback halfway through a run. A nested section left out, or given in part, keeps the
parent's default for it (``training:`` in a run file starts from the shipped training
settings). A class may define ``from_mapping(value, source, prefix)`` to parse its section
itself (the ``data`` section) and ``check_loaded(source, prefix)`` for checks across keys.
Rules for single values:

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


def _dataclass_of(hint):
    """The dataclass in annotation ``hint`` (``X`` or ``X | None``), else None."""
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)]
        return found[0] if len(found) == 1 else None
    return None


def _list_item_dataclass(hint):
    if typing.get_origin(hint) in (list, tuple):
        args = typing.get_args(hint)
        if args and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


def build_config(cls, d: Any, source: str | None = None, prefix: str = "", base=None):
    """An instance of config dataclass ``cls`` from mapping ``d``.

    Keys missing from ``d`` keep the values of ``base`` (default: ``cls()``); nested
    dataclass sections are built the same way from the base's section, lists of dataclasses
    item by item. Unknown keys, values of the wrong type and range errors of the class's
    ``__post_init__`` are a `DataError` naming ``source`` (the file) and the key."""
    hook = getattr(cls, "from_mapping", None)
    if hook is not None:
        return hook(d, source, prefix)
    if base is None:
        base = cls()
    if isinstance(d, dict):  # YAML 1.1 reads a bare `no` as false
        choices = getattr(cls, "CHOICES", {})
        d = {k: "no" if v is False and "no" in choices.get(k, ()) else v for k, v in d.items()}
    values = check_mapping(cls, d, source, prefix, skip=_nested(cls), what="setting")
    hints = field_types(cls)
    kwargs = {f.name: getattr(base, f.name) for f in dataclasses.fields(cls) if f.init}
    for name, value in values.items():
        sub, item = _dataclass_of(hints[name]), _list_item_dataclass(hints[name])
        key = prefix + name
        if sub is not None and value is not None:
            current = getattr(base, name)
            kwargs[name] = build_config(
                sub, value, source, key + ".", current if isinstance(current, sub) else None
            )
        elif item is not None:
            if not isinstance(value, list | tuple):
                raise DataError(f"{key} must be a list", source=source, column=key)
            kwargs[name] = [
                build_config(item, v, source, f"{key}[{i}].") for i, v in enumerate(value)
            ]
        elif sub is not None:  # null for an optional section
            kwargs[name] = check_value(value, hints[name], key, source)
        else:
            kwargs[name] = value
    try:
        built = cls(**kwargs)
    except DataError as e:  # a range check of __post_init__: add the file and the key
        if e.source is not None:
            raise
        message = str(e).split(": ", 1)[-1] if e.column else str(e)
        if e.column and message.startswith(e.column):
            message = prefix + message
        column = prefix + e.column if e.column else prefix.rstrip(".") or None
        raise DataError(message, source=source, column=column) from None
    except (TypeError, ValueError) as e:
        where = prefix.rstrip(".") or "config"
        raise DataError(f"bad value in {where}: {e}", source=source) from None
    check = getattr(built, "check_loaded", None)
    if check is not None:
        check(source, prefix)
    return built


def _nested(cls) -> tuple[str, ...]:
    """Fields of ``cls`` that `build_config` builds itself (dataclass sections, lists of them)."""
    hints = field_types(cls)
    return tuple(
        n for n, h in hints.items() if _dataclass_of(h) is not None or _list_item_dataclass(h)
    )


def apply_overrides(config, overrides, source: str = "--set"):
    """A copy of ``config`` with ``SECTION.KEY=VALUE`` overrides applied (VALUE is read as
    YAML: ``5e-4``, ``true``, ``[query, value]``, ``null``); ``priors.0.name=pop`` indexes a
    list. The result goes through `build_config`, so an unknown key or a bad value is one
    `DataError` naming the override."""
    overrides = list(overrides or [])
    if not overrides:
        return config
    import yaml

    d = dataclasses.asdict(config)
    for item in overrides:
        key, eq, raw = str(item).partition("=")
        key = key.strip()
        if not eq or not key or any(not p for p in key.split(".")):
            raise DataError(
                f"expected SECTION.KEY=VALUE (e.g. training.lr=5e-4), got {item!r}", source=source
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        _set_path(d, key.split("."), value, key, source)
    return build_config(type(config), d, source)


def _set_path(d, parts: list[str], value, key: str, source: str) -> None:
    node = d
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise DataError(
                    f"no item {part!r} in list {'.'.join(parts[:i])!r} (it has {len(node)})",
                    source=source,
                    column=key,
                )
            part = int(part)
        elif not isinstance(node, dict):
            raise DataError(f"{'.'.join(parts[:i])} is not a section", source=source, column=key)
        elif not last and part not in node:
            raise DataError(
                f"unknown setting {'.'.join(parts[: i + 1])!r}", source=source, column=key
            )
        if last:
            node[part] = value
        else:
            node = node[part]


def load_config(cls, path, overrides=()):
    """Config ``cls`` from YAML file ``path`` (None: the class defaults), then ``overrides``
    (``SECTION.KEY=VALUE``); errors name the file or the override and the key."""
    from .yamlfile import read_yaml_mapping

    if path is None:
        cfg = build_config(cls, {})
    else:
        cfg = build_config(cls, read_yaml_mapping(path, f"{cls.__name__} settings"), str(path))
    return apply_overrides(cfg, overrides)
