"""Parameter layers: reading YAML, merging the layers, and validating a tree against a spec so
that an error names the file (the layer) that set the bad value, the key path, the value and what
is allowed."""
from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from helpers.config.errors import ConfigError, did_you_mean


class KeyProblem(yaml.YAMLError):
    """A mapping key PyYAML would accept but the user cannot have meant (see _StrictLoader)."""


def _path_to(root: yaml.Node, target: yaml.Node) -> tuple | None:
    """The key path from ``root`` to the node ``target`` (aliases visited once)."""
    stack, seen = [(root, ())], set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack += [(v, path + (k.value,)) for k, v in node.value if isinstance(k, yaml.ScalarNode)]
        elif isinstance(node, yaml.SequenceNode):
            stack += [(v, path + (i,)) for i, v in enumerate(node.value)]
    return None


def _kind_of(value: Any) -> str:
    return ("null" if value is None else "a boolean" if isinstance(value, bool)
            else "a number" if isinstance(value, (int, float)) else f"a {type(value).__name__}")


def _not_a_name(node: yaml.Node, key: Any) -> str:
    raw = node.value if isinstance(node, yaml.ScalarNode) else None
    if not raw:
        return f"a key must be a name, not {_kind_of(key)}"
    return f"the key {raw} reads as {_kind_of(key)}, not a name; quote it: '{raw}'"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key given twice in one mapping, or a key that is not
    text, is an error: PyYAML keeps the last of two keys silently (a study written twice vanished),
    and reads `no:` or `1:` as a boolean or a number where every key here is a name."""

    def construct_document(self, node):
        self._root = node  # for the key path of an error
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen: dict[str, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                raise KeyProblem(f"{self._where(node) or '(top level)'} (line {line}): {_not_a_name(key_node, key)}")
            if key in seen:
                raise KeyProblem(f"{self._where(node, key)}: given twice (lines "
                                 f"{seen[key].start_mark.line + 1} and {line}); YAML would keep only "
                                 "the last: keep one")
            seen[key] = key_node
        return super().construct_mapping(node, deep)

    def _where(self, node: yaml.Node, *key: str) -> str:
        return _fmt_path((*(_path_to(self._root, node) or ()), *key))


def parse_yaml(text: str) -> Any:
    """YAML text as Python values; raises yaml.YAMLError (KeyProblem: a duplicate or non-text key)."""
    return yaml.load(text, Loader=_StrictLoader)


def read_yaml(path: Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{rel(path)}: file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{rel(path)}: is a folder, not a parameter file") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{rel(path)}: not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset "
                          f"{e.start}); a parameter file is YAML text") from None
    except OSError as e:
        raise ConfigError(f"{rel(path)}: cannot read it: {e.strerror}") from None
    try:
        data = parse_yaml(text)
    except KeyProblem as e:
        raise ConfigError(f"{rel(path)}: {e}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{rel(path)}: malformed YAML{_yaml_problem(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{rel(path)}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def _yaml_problem(e: yaml.YAMLError) -> str:
    """' (line 3, column 1): what PyYAML found', on one line."""
    mark = getattr(e, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{where}: {problem}"


def merge(low: Any, high: Any, record: Callable[[tuple, Any], None] | None = None, at: tuple = ()) -> Any:
    """Deep-merge two YAML trees; mappings merge key by key, anything else is replaced.
    ``record(path, value)`` hears of each value ``high`` puts in place: where it came from."""
    if isinstance(low, dict) and isinstance(high, dict):
        out = dict(low)
        for k, v in high.items():
            out[k] = merge(low.get(k), v, record, (*at, k))
        return out
    if record is not None:
        record(at, high)
    return copy.deepcopy(high)


def leaves(tree: Any, at: tuple = ()):
    """(path, value) of every value that is not a non-empty mapping."""
    if isinstance(tree, dict) and tree:
        for k, v in tree.items():
            yield from leaves(v, (*at, k))
    else:
        yield at, tree


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

    def merged(self) -> tuple[dict, dict[tuple, str]]:
        """The layers merged, lowest first, and the layer each leaf of the result came from."""
        tree: dict = {}
        origins: dict[tuple, str] = {}
        for source, layer in self.items:
            def record(at: tuple, value: Any, source: str = source) -> None:
                for path in [p for p in origins if p[:len(at)] == at]:  # what ``value`` replaces
                    del origins[path]
                origins.update({(*at, *p): source for p, _ in leaves(value)})
            tree = merge(tree, layer, record)
        return tree, origins

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
    if isinstance(value, bool) and typ in ("string_type", "literal_error"):
        msg += " (YAML 1.1 reads yes, no, on, off unquoted as booleans: quote the word)"
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
