"""Shared by the benchmarks: each one owns one `## name` section of bench/RESULTS.md."""

from __future__ import annotations

import os
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def replace_section(text: str, heading: str, body: str) -> str:
    """Replace the lines from `heading` up to the next `## ` heading; append when missing."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        base = text.rstrip("\n")
        return (base + "\n\n" if base else "") + body
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    tail = "".join(lines[end:])
    return "".join(lines[:start]) + body + ("\n" + tail if tail else "")


def write_section(heading: str, body: str, results: Path = RESULTS) -> None:
    """Rewrite one section atomically; the other benchmarks' sections stay as they are."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    tmp = results.with_suffix(".md.tmp")
    tmp.write_text(replace_section(text, heading, body))
    os.replace(tmp, results)
