"""A griffe extension for the API reference: doctests shown as code.

Docstrings in tinynet are NumPy style, and many end with a short doctest. In
reStructuredText a bare ``>>>`` block is code by itself; in Markdown (what mkdocstrings
renders) it is a paragraph unless it sits in an ``Examples`` section, and a doctest line
such as ``x[0][1]`` then even reads as a Markdown link. This extension, run before
docstrings are parsed, gives every bare doctest block an ``Examples`` heading (and reads a
singular ``Example`` heading as ``Examples``), so both conventions render as code.
A plain paragraph written after a parameter list (numpydoc would show it as text) gets a
``Notes`` heading, so it is not read as one more parameter.
"""
from __future__ import annotations

import re

import griffe

# "name", "name : type", "x, y : int", "*args", "**kwargs : dict"
_PARAMETER_ITEM = re.compile(r"^\*{0,2}\w+(\s*,\s*\*{0,2}\w+)*\s*(:.*)?$")
_PARAMETER_SECTIONS = ("parameters", "other parameters", "attributes")


def _is_dash_line(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) >= 3 and set(stripped) == {"-"}


def with_example_headings(text: str) -> str:
    """Returns ``text`` with an ``Examples`` heading before each bare doctest block."""
    lines = text.split("\n")
    out: list[str] = []
    section = None
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
        is_heading = (not in_fence and stripped and not line.startswith(" ")
                      and i + 1 < len(lines) and _is_dash_line(lines[i + 1]))
        if is_heading:
            section = stripped.lower()
            if section == "example":
                section = "examples"
                out += ["Examples", "--------"]
                i += 2
                continue
            out += [line, lines[i + 1]]
            i += 2
            continue
        if (not in_fence and section in _PARAMETER_SECTIONS and stripped
                and not line.startswith((" ", ">>>")) and not _PARAMETER_ITEM.match(stripped)
                and (not out or not out[-1].strip())):
            out += ["Notes", "-----"]
            section = "notes"
        if (not in_fence and line.startswith(">>>") and section != "examples"
                and (not out or not out[-1].strip())):
            out += ["Examples", "--------"]
            section = "examples"
        out.append(line)
        i += 1
    return "\n".join(out)


class DoctestExamples(griffe.Extension):
    """Gives bare doctests an ``Examples`` heading before mkdocstrings parses them."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        docstring = obj.docstring
        if docstring is not None and ">>>" in docstring.value:
            docstring.value = with_example_headings(docstring.value)
