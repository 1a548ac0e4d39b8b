"""Run every benchmark in this folder and print `name: value` lines.

A benchmark is a module benchmarks/<name>.py (not starting with "_") with a main() that returns a
dict of metric name -> value. `python benchmarks/run.py [name ...]` runs only the named ones.
"""
from __future__ import annotations

import importlib.util
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> dict[str, Path]:
    return {p.stem: p for p in sorted(HERE.glob("*.py")) if p.stem != "run" and not p.stem.startswith("_")}


def run_one(path: Path) -> dict:
    spec = importlib.util.spec_from_file_location(f"benchmarks.{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "main", None)):
        raise TypeError(f"{path.name} has no main()")
    result = module.main()
    if not isinstance(result, dict):
        raise TypeError(f"{path.name}: main() returned {type(result).__name__}, not a dict")
    return result


def main(argv: list[str]) -> int:
    found = discover()
    unknown = [a for a in argv if a not in found]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(found)}", file=sys.stderr)
        return 2
    failed = 0
    for name in argv or list(found):
        t0 = time.perf_counter()
        try:
            result = run_one(found[name])
        except Exception:  # noqa: BLE001 - report and go on with the other benchmarks
            failed += 1
            print(f"# {name}: FAILED", file=sys.stderr)
            traceback.print_exc()
            continue
        for key, value in result.items():
            print(f"{key}: {value}", flush=True)
        print(f"# {name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
