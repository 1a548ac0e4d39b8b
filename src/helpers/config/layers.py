"""Parameter layers: reading YAML, merging the layers, and validating a tree against a spec so
that an error names the file (the layer) that set the bad value, the key path, the value and what
is allowed."""
from __future__ import annotations

import copy
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from helpers.config.errors import ConfigError, did_you_mean


def read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{rel(path)}: file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{rel(path)}: malformed YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{rel(path)}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def merge(low: Any, high: Any) -> Any:
    """Deep-merge two YAML trees; mappings merge key by key, anything else is replaced."""
    if isinstance(low, dict) and isinstance(high, dict):
        out = dict(low)
        for k, v in high.items():
            out[k] = merge(low.get(k), v) if k in low else copy.deepcopy(v)
        return out
    return copy.deepcopy(high)



def put(tree: dict, path: list[str], value: Any) -> dict:
    node = tree
    for p in path[:-1]:
        if not isinstance(node.get(p), dict):
            node[p] = {}
        node = node[p]
    node[path[-1]] = value
    return tree


def _has(tree: Any, path: tuple) -> bool:
    for p in path:
        if isinstance(tree, dict) and p in tree:
            tree = tree[p]
        elif isinstance(tree, list) and isinstance(p, int) and p < len(tree):
            tree = tree[p]
        else:
            return False
    return True


class Layers:
    """The raw layers, kept so an error can name the file that set the bad value."""

    def __init__(self) -> None:
        self.items: list[tuple[str, dict]] = []

    def add(self, source: str, tree: dict) -> None:
        self.items.append((source, tree))

    def rank(self, path: tuple) -> int:
        """Index of the last layer that sets ``path`` (-1: none)."""
        return max((i for i, (_, tree) in enumerate(self.items) if _has(tree, path)), default=-1)

    def source_of(self, path: tuple) -> str:
        i = self.rank(path)
        # A key missing everywhere was required by the schema: blame the top layer's file.
        return self.items[i][0] if i >= 0 else (self.items[-1][0] if self.items else "parameters")


def _fmt_path(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _error_line(err: dict, layers: Layers, user_loc: tuple, allowed: list[str]) -> str:
    source = layers.source_of(user_loc)
    where = _fmt_path(user_loc) or "(top level)"
    typ, value = err["type"], err.get("input")
    if typ == "extra_forbidden":
        return (f"{source}: {where}: unknown key {user_loc[-1]!r}{did_you_mean(user_loc[-1], allowed)}"
                + (f"; allowed: {', '.join(allowed)}" if allowed else ""))
    msg = err["msg"]
    expected = err.get("ctx", {}).get("expected")
    if typ == "literal_error" and expected:
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        msg = f"must be one of {', '.join(options)}{did_you_mean(value, options)}"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    else:
        msg = msg[0].lower() + msg[1:]
        msg = msg.replace("input should be", "must be")
    if typ == "missing":
        return f"{source}: {where}: required key is missing"
    if isinstance(value, dict) and typ.startswith("value_error"):
        return f"{source}: {where}: {msg}"
    return f"{source}: {where} = {value!r}: {msg}"


def _unwrap(ann: Any) -> Any:
    """Optional[X] -> X, so that a walk along an error's location can follow nested models."""
    args = [a for a in get_args(ann) if a is not type(None)]
    return args[0] if get_origin(ann) in (Union, UnionType) and len(args) == 1 else ann


def _fields_at(cls: Any, loc: tuple) -> list[str]:
    """The keys allowed at ``loc`` inside model ``cls``: for "did you mean" on an unknown key."""
    cur = cls
    for p in loc:
        cur = _unwrap(cur)
        if isinstance(cur, type) and issubclass(cur, BaseModel) and p in cur.model_fields:
            cur = cur.model_fields[p].annotation
        elif get_origin(cur) in (list, dict):
            cur = get_args(cur)[-1]
    cur = _unwrap(cur)
    return sorted(cur.model_fields) if isinstance(cur, type) and issubclass(cur, BaseModel) else []


def check(cls: type[BaseModel], data: Any, layers: Layers, where) -> Any:
    """Validate ``data`` as ``cls``; ``where`` maps the error's location to the user's key path."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        loc = tuple(err["loc"])
        allowed = _fields_at(cls, loc[:-1]) if err["type"] == "extra_forbidden" else []
        user_loc = where(loc)
        linked = getattr(cls, "linked", {}).get(loc[-1], ()) if loc else ()
        if linked:  # blame the partner key instead when a later layer set it
            partner = max((where(loc[:-1] + (k,)) for k in linked), key=layers.rank)
            if layers.rank(partner) > layers.rank(user_loc):
                user_loc = partner
                err = dict(err, input=value_at(layers, partner))
        raise ConfigError(_error_line(err, layers, user_loc, allowed)) from None


def value_at(layers: Layers, path: tuple) -> Any:
    tree = layers.items[layers.rank(path)][1]
    for p in path:
        tree = tree[p]
    return tree



def rel(path: Path) -> Path:
    try:
        return Path(path).resolve().relative_to(Path.cwd())
    except ValueError:
        return Path(path)
