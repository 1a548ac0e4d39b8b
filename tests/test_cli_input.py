"""Bad input on the command line, as a user meets it: build_report.py says what is wrong in one
line on stderr, exits 2, and leaves a previous build's output folder exactly as it was. Nothing
here trains: every case fails before the first run."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import run_build

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


def previous_build(out: Path) -> dict[Path, tuple[bytes, int]]:
    """A fake earlier build in ``out`` (report, JSON, a notebook, a cached run), as its bytes and
    modification times."""
    for name, text in (("report.html", "<html>old</html>"), ("report.json", "{}"),
                       ("report/depth.ipynb", "{}"), (".cache/ab/run.json", "{}")):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    return snapshot(out)


def snapshot(out: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.rglob("*")) if p.is_file()}


def params(tmp: Path) -> dict[str, Path]:
    """Parameter files as a new user might hand them over."""
    files = {"binary": tmp / "report.yaml", "png": tmp / "report.png", "folder": tmp / "params.yaml",
             "duplicate": tmp / "dup.yaml", "ok": tmp / "ok.yaml", "a file": tmp / "notes.txt"}
    files["binary"].write_bytes(b"\xff\xfe\x00garbage")
    files["png"].write_bytes(PNG)
    files["folder"].mkdir()
    files["duplicate"].write_text("studies:\n  depth: {}\n  width: {}\n  depth:\n    layers: [1]\n")
    files["ok"].write_text("studies: {depth: {}}\ndataset: digits\n")
    files["a file"].write_text("notes\n")
    return files


# (the parameter file, further arguments, what the one line says); "{file}" is a plain file's path.
CASES = [
    ("binary", [], r"report\.yaml: not UTF-8 text \(byte 0xff at offset 0\)"),
    ("png", [], r"report\.png: not UTF-8 text \(byte 0x89 at offset 0\)"),
    ("folder", [], r"params\.yaml: is a folder, not a parameter file"),
    ("ok", ["--out", "{file}"], r"--out .*notes\.txt: is a file, not a folder"),
    ("ok", ["--out", "{file}/sub"], r"--out .*notes\.txt/sub: .*notes\.txt is a file, not a folder"),
    ("ok", ["--out", "{file}", "--clear-cache"], r"--out .*notes\.txt: is a file, not a folder"),
    ("duplicate", [], r"dup\.yaml: studies\.depth: given twice \(lines 2 and 4\)"),
    ("ok", ["--set", "depth={layers: [1], layers: [2]}"], r"--set depth=.*: layers: given twice"),
    ("ok", ["--set", "title=no"], r"--set: title = False: must be a valid string \(YAML 1\.1"),
    ("ok", ["--studies", ","], r"--studies: names no study; this report has depth"),
    ("ok", ["--force", ","], r"--force ',': names no study; studies: depth"),
    ("ok", ["--force", "width"], r"--force width: no study 'width' in this build"),
    ("ok", ["--jobs", "two"], r"argument --jobs: invalid int value: 'two' \(see --help\)"),
    ("ok", ["--workers", "0"], r"--workers 0: must be at least 1"),
    ("ok", ["--profile", "fast"], r"argument --profile: invalid choice: 'fast'"),
    ("ok", ["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], r"--workers 2: a cluster given by --scheduler"),
    ("ok", ["--show-config", "dpeth"], r"--show-config dpeth: no study 'dpeth' \(did you mean 'depth'\?\); this report has depth"),
]


@pytest.mark.parametrize("which, args, match", CASES, ids=[f"{w} {' '.join(a)}".strip() for w, a, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(tmp_path, which, args, match):
    out = tmp_path / "out"
    before = previous_build(out)
    files = params(tmp_path)
    args = [a.replace("{file}", str(files["a file"])) for a in args]
    proc = run_build(files[which], "--out", out, *args, timeout=120)
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    assert re.search(match, lines[0]), lines[0]
    assert snapshot(out) == before
    assert files["a file"].read_text() == "notes\n"


@pytest.mark.parametrize("args", [["--show-config"], ["--show-config", "depth"], ["--set", "depth.units=8", "--show-config"]])
def test_show_config_prints_yaml_and_touches_nothing(tmp_path, args):
    out = tmp_path / "out"
    before = previous_build(out)
    files = params(tmp_path)
    proc = run_build(files["ok"], "--out", out, *args, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    shown = yaml.safe_load(proc.stdout)
    assert shown["dataset"] == "digits" and list(shown["studies"]) == ["depth"]
    assert "# params/defaults.yaml" in proc.stdout and "# params/studies/depth.yaml" in proc.stdout
    assert snapshot(out) == before
