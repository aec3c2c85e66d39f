"""The benchmarks' shared core: what every report records (the exact command, when, and the machine: CPU
model, its relevant flags, logical CPUs, library versions) and how reports are written (JSON for tools,
Markdown for people, each replaced atomically). Entry scripts measure; this module describes and writes."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scorer.paths import write_text_atomic
from scorer.precision import cpu_info
from scorer.versions import installed_versions

PACKAGES = (
    "numpy",
    "pyarrow",
    "tokenizers",
    "onnxruntime",
    "openvino",
    "torch",
    "transformers",
    "sentence-transformers",
    "optimum",
    "scipy",
    "faiss-cpu",
    "ray",
)


def machine() -> dict[str, Any]:
    """This machine as a report names it: CPU model and flags, logical CPUs, installed library versions."""
    cpu = cpu_info().describe()
    versions = {name: v for name, v in installed_versions(PACKAGES).items() if v != "not installed"}
    return {"cpu": cpu["model"], "cpu_flags": cpu["flags"], "logical_cpus": os.cpu_count(), "versions": versions}


def header(module: str, argv: list[str] | None = None) -> dict[str, Any]:
    """The fields every report starts with: the exact command (`argv`, else this process's), when it ran,
    on which machine."""
    return {
        "command": f"python -m {module} {shlex.join(sys.argv[1:] if argv is None else argv)}".rstrip(),
        "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": machine(),
    }


def machine_line(result: dict[str, Any]) -> str:
    """One Markdown line: when and where the figures were measured."""
    m = result["machine"]
    flags = " ".join(m.get("cpu_flags", [])) or "none of avx2/avx512/amx read"
    return f"{result['created']}; CPU: {m['cpu']} ({m['logical_cpus']} logical CPUs; flags: {flags})."


def report_head(title: str, result: dict[str, Any]) -> list[str]:
    """The Markdown lines every report opens with: its title, the exact command, when and where it ran."""
    return [f"# {title}", "", f"`{result['command']}`", "", machine_line(result), ""]


def write_report(
    out: Path, name: str, result: dict[str, Any], markdown: str, chart: Callable[[Path], None] | None = None
) -> Path:
    """Write `name.json`, `name.md` (and `name.png` with `chart`) into `out`; returns the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / f"{name}.json", json.dumps(result, indent=2, default=float) + "\n")
    if chart is not None:
        chart(out / f"{name}.png")
    write_text_atomic(out / f"{name}.md", markdown)
    return out / f"{name}.md"
