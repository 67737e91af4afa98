"""Every fenced ``python`` and ``bash`` block of README.md and docs/*.md runs, in page order, in a
fresh folder holding the bundled sample data (``examples/data``), as a new user would run them.

A block that cannot run here is marked on the line before its fence with
``<!-- snippet: skip REASON -->`` (the reason is shown in the test report), e.g. blocks that need
a GPU, a cluster or files the user brings. ``<!-- snippet: setup -->`` marks a hidden setup
block: ``<!-- snippet: setup\\nCODE\\n-->`` runs CODE (python) before the next block.
docs/monai.md has its own runner (tests/test_monai_docs.py); docs/cli.md is generated.

A page with a runnable ``bash`` block is marked ``slow``: each of its commands starts a fresh
process (torch imported anew, 2-3 s) and such pages take 15-70 s; CI runs them (``.ci/run``),
the default test run keeps the pages whose blocks are all Python.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
EXCLUDED = {"monai.md", "cli.md", "changelog.md"}
FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```\s*$", re.M | re.S)
MARK = re.compile(r"<!--\s*snippet:\s*(skip|setup)\b(.*?)-->\s*$", re.S)


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    skip: str | None
    setup: str | None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        lang = m.group(1).lower()
        if lang not in ("python", "bash", "sh"):
            continue
        before = text[: m.start()].rstrip("\n").rsplit("\n\n", 1)[-1]
        mark = MARK.search(before)
        skip = setup = None
        if mark and mark.group(1) == "skip":
            skip = mark.group(2).strip() or "marked skip"
        elif mark:
            setup = mark.group(2).strip()
        line = text[: m.start()].count("\n") + 1
        out.append(Block(page.name, line, lang, m.group(2), skip, setup))
    return out


def _runnable_pages() -> list[Path]:
    return [p for p in PAGES if p.name not in EXCLUDED and any(blocks(p))]


def _runs_commands(page: Path) -> bool:
    return any(b.lang != "python" and not b.skip for b in blocks(page))


def _page_params() -> list[object]:
    return [
        pytest.param(p, id=p.name, marks=[pytest.mark.slow] if _runs_commands(p) else [])
        for p in _runnable_pages()
    ]


@pytest.fixture
def workdir(tmp_path) -> Path:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    for name in ("configs", "benchmarks", "scripts"):
        (tmp_path / name).symlink_to(REPO / name)
    return tmp_path


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }


@pytest.mark.parametrize("page", _page_params())
def test_page_blocks_run(page, workdir):
    ns: dict[str, object] = {"__name__": "__doc__"}
    skipped = []
    old = Path.cwd()
    # a page's own code may set variables for good (a LocalCluster of its own: distributed's
    # nanny puts OMP_NUM_THREADS=1, PYTHONHASHSEED, ... in os.environ); theirs, not ours
    env = dict(os.environ)
    os.chdir(workdir)
    try:
        for b in blocks(page):
            where = f"{b.page}:{b.line}"
            if b.skip:
                skipped.append(f"{where} ({b.skip})")
                continue
            if b.setup:
                exec(compile(b.setup, f"{where} setup", "exec"), ns)
            if b.lang == "python":
                try:
                    exec(compile(b.code, where, "exec"), ns)
                except Exception as exc:
                    pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
            else:
                r = subprocess.run(
                    ["bash", "-e", "-o", "pipefail", "-c", b.code],
                    cwd=workdir,
                    env=_env(),
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                if r.returncode != 0:
                    pytest.fail(
                        f"{where}: exit {r.returncode}\n{r.stdout[-1500:]}\n{r.stderr[-2500:]}"
                    )
    finally:
        os.chdir(old)
        os.environ.clear()
        os.environ.update(env)
    if skipped:
        print("skipped blocks:", *skipped, sep="\n  ")


def test_skip_marks_give_reasons():
    for page in PAGES:
        for b in blocks(page):
            if b.skip is not None:
                assert b.skip != "marked skip", f"{b.page}:{b.line}: say why the block is skipped"
