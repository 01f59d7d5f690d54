"""The documentation cannot drift from the code.

1. Every ```python block in README.md and docs/**/*.md runs. The blocks of one page run in
   order in one namespace (a page is one program, read top to bottom), in a fresh
   temporary working directory. A block that must not run here (it needs a GPU, or
   downloads something) is marked by the line ``<!-- docs-test: skip -->`` right above it;
   blocks in other languages (```bash, ```text) are never run.
2. ``mkdocs build --strict`` succeeds: every page is in the navigation, every link and
   anchor resolves, and every docstring in the API reference parses.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_MARK = "<!-- docs-test: skip -->"
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)(.*)$")


def markdown_pages() -> list[Path]:
    pages = [ROOT / "README.md"] if (ROOT / "README.md").is_file() else []
    pages += sorted((ROOT / "docs").rglob("*.md"))
    return pages


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(first line number, source)`` of each runnable ```python block of a page."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence, language = match.group(1), match.group(2), match.group(3).lower()
        start = i + 1
        j = start
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        previous = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        if language == "python" and previous != SKIP_MARK:
            body = [line[len(indent):] if line.startswith(indent) else line
                    for line in lines[start:j]]
            blocks.append((start + 1, "\n".join(body)))
        i = j + 1
    return blocks


PAGES = [p for p in markdown_pages() if python_blocks(p)]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_code_blocks_run(page: Path, tmp_path, monkeypatch):
    """A failure here means a page shows code that no longer works with the library."""
    import tinynet

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.syspath_prepend(str(ROOT))
    default_device = tinynet.get_default_device()
    threads = _thread_settings()
    namespace = {"__name__": "__docs__"}
    try:
        for line, source in python_blocks(page):
            # Pad so a traceback's line numbers are the Markdown file's own.
            code = compile("\n" * (line - 1) + source, str(page.relative_to(ROOT)), "exec")
            try:
                exec(code, namespace)
            except Exception as e:
                raise AssertionError(f"{page.relative_to(ROOT)}: the ```python block starting "
                                     f"at line {line} fails: {type(e).__name__}: {e}") from e
    finally:
        tinynet.set_default_device(default_device)
        tinynet.set_grad_enabled(True)
        _restore_thread_settings(threads)


def _thread_settings():
    """Thread counts of NumPy's thread pools and PyTorch (a page may change them)."""
    pools = None
    try:
        from threadpoolctl import threadpool_info
        pools = {info["prefix"]: info["num_threads"] for info in threadpool_info()}
    except ImportError:
        pass
    torch = sys.modules.get("torch")
    return pools, (torch.get_num_threads() if torch is not None else None)


def _restore_thread_settings(settings):
    pools, torch_threads = settings
    if pools:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=pools)
    torch = sys.modules.get("torch")
    if torch is not None and torch_threads is not None:
        torch.set_num_threads(torch_threads)


def test_every_page_with_python_is_collected():
    """The block parser finds code in the pages that obviously have some."""
    assert PAGES, "no ```python blocks found in README.md or docs/"


@pytest.mark.config_independent        # a docs build: no device, no kernel route
def test_mkdocs_build_strict(tmp_path):
    """A failure means a broken link, a page missing from the nav, or a bad docstring."""
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e .[docs])")
    pytest.importorskip("mkdocstrings", reason="mkdocstrings is not installed "
                                                "(pip install -e .[docs])")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if "WARNING" in line or "ERROR" in line or "Aborted" in line]
    assert result.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(
        problems or [result.stdout[-3000:], result.stderr[-3000:]])
    assert (tmp_path / "site" / "index.html").is_file()


def shell_commands(path: Path) -> list[tuple[int, list[str]]]:
    """``tinynet ...`` and ``python benchmarks/run.py ...`` lines of ```bash blocks."""
    import shlex
    found, lines = [], path.read_text(encoding="utf-8").splitlines()
    in_bash = False
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if match:
            in_bash = not in_bash and match.group(3).lower() in ("bash", "sh", "console", "shell")
            continue
        if not in_bash:
            continue
        words = shlex.split(line.strip().lstrip("$ "), comments=True)
        while words and "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]                         # VAR=value prefixes
        if words[:1] == ["tinynet"] or words[:2] == ["python", "benchmarks/run.py"] \
                or words[:3] == ["python", "-m", "tinynet"]:
            found.append((number, words))
    return found


def test_command_lines_in_the_docs_parse():
    """A failure means a page shows a `tinynet` option that the command no longer has."""
    import argparse
    import contextlib
    import io
    from tinynet import bench, cli
    commands = [(page, n, words) for page in markdown_pages() for n, words in shell_commands(page)]
    assert commands, "no tinynet command lines found in the docs"
    for page, number, words in commands:
        if words[0] == "python" and words[1] == "benchmarks/run.py":
            parser, args = bench.add_arguments(argparse.ArgumentParser()), words[2:]
        else:
            parser, args = cli.build_parser(), words[1:] if words[0] == "tinynet" else words[3:]
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(args)
        except SystemExit as e:
            assert e.code == 0, (f"{page.relative_to(ROOT)}:{number}: `{' '.join(words)}` is "
                                 f"rejected by the command: {stderr.getvalue().strip()}")
