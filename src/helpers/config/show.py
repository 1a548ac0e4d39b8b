"""The merged parameters as YAML, each value followed by a comment naming the layer that set it
(``build_report.py --show-config``): the tree and the layers are the ones the build validated."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from helpers.config.errors import ConfigError, did_you_mean
from helpers.config.plan import Plan


def show(plan: Plan, study: str | None = None) -> str:
    """The parameters of ``study`` (None: of every study in the plan), annotated."""
    if study is not None and study not in plan.studies:
        raise ConfigError(f"--show-config {study}: no study {study!r}{did_you_mean(study, plan.studies)}; "
                          f"this report has {', '.join(plan.studies)}")
    return annotated(selected(plan, [study] if study else list(plan.studies)), plan.origins)


def selected(plan: Plan, studies: list[str]) -> dict:
    """The merged parameters with only ``studies`` under ``studies``."""
    return dict(plan.merged, studies={name: plan.merged["studies"][name] for name in studies})


def annotated(tree: dict, origins: dict[tuple, str]) -> str:
    """Block-style YAML of ``tree``, each value on one line with ``# <its layer>`` at the end."""
    lines = list(_lines(tree, origins))
    # Comments in one column, unless a long value would push them all far to the right.
    column = min(max(len(code) for code, source in lines if source), 60)
    return "".join(f"{code.ljust(column)}  # {source}\n" if source else f"{code}\n" for code, source in lines)


def _lines(tree: dict, origins: dict[tuple, str], at: tuple = ()) -> Iterator[tuple[str, str | None]]:
    indent = "  " * len(at)
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            yield f"{indent}{_flow(key)}:", None
            yield from _lines(value, origins, (*at, key))
        else:
            yield f"{indent}{_flow(key)}: {_flow(value)}", origins[(*at, key)]


class _OneLine(yaml.SafeDumper):
    """Flow style on one line: a multi-line string is double-quoted, its line breaks escaped."""


_OneLine.add_representer(str, lambda dumper, s: dumper.represent_scalar(
    "tag:yaml.org,2002:str", s, style='"' if "\n" in s else None))


def _flow(value: Any) -> str:
    text = yaml.dump(value, Dumper=_OneLine, default_flow_style=True, width=float("inf"),
                     allow_unicode=True, sort_keys=False)
    return text.removesuffix("...\n").strip()  # the end-of-document mark after a plain scalar
