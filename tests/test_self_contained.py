"""The repository stands on its own: no file it tracks points outside it.

Team notes kept next to the repository (a design file, a design folder with the
MPM model and the HTTP/1.1 checklist, a shared folder) are not part of the
project, so code comments, docstrings, docs and report text must cite the
project's own pages instead (docs/mpm-model.md, docs/conformance.md,
docs/performance.md). This test walks every file ``git ls-files`` lists and
fails naming ``file:line`` for

* any reference to those outside notes, and
* any ``docs/<name>.md`` (or, inside docs/, a relative ``[text](NAME.md)`` link)
  that names a page the repository does not track, so a broken doc link
  cannot come back.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Built from pieces so that this file does not match its own patterns.
_OUTSIDE = [
    "DESIGN" + ".md",
    "design/" + "mpm-model.md",
    "design/" + "http11-checklist.md",
    "../" + "shared",
    "/work/" + "shared",
]
OUTSIDE_REFERENCE = re.compile("|".join(re.escape(s) for s in _OUTSIDE))
#: docs/<name>.md as a path from the repository root (not some/other/docs/<name>.md)
DOC_PATH = re.compile(r"(?<![\w./-])docs/([\w.-]+?\.md)\b")
#: a relative markdown link to a page, as docs/*.md link to each other
MD_LINK = re.compile(r"\]\(([\w.-]+\.md)(?:#[^)]*)?\)")


def _tracked_files() -> list[str]:
    """Every path git tracks in this repository (skips the test without git)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    proc = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if proc.returncode != 0:
        pytest.skip("not a git checkout: " + proc.stderr.decode(errors="replace").strip())
    return [p for p in proc.stdout.decode().split("\0") if p]


def _text_lines(path: Path) -> list[str]:
    """The file's lines, or nothing for a binary file or one missing from the work tree."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return []
    if b"\0" in data:
        return []
    return data.decode("utf-8", errors="replace").splitlines()


def _problems(tracked: list[str]) -> list[str]:
    """``file:line: reason`` for every outside reference and broken docs link."""
    known = set(tracked)
    found = []
    for rel in tracked:
        in_docs = rel.startswith("docs/") and rel.endswith(".md")
        for n, line in enumerate(_text_lines(ROOT / rel), 1):
            for m in OUTSIDE_REFERENCE.finditer(line):
                found.append(f"{rel}:{n}: refers to {m.group(0)!r}, which is outside the repository")
            for m in DOC_PATH.finditer(line):
                if f"docs/{m.group(1)}" not in known:
                    found.append(f"{rel}:{n}: docs/{m.group(1)} does not exist in the repository")
            if in_docs:
                for m in MD_LINK.finditer(line):
                    if f"docs/{m.group(1)}" not in known:
                        found.append(f"{rel}:{n}: link to {m.group(1)}, which is not in docs/")
    return found


def test_no_reference_outside_the_repository_and_no_broken_doc_link() -> None:
    """Every reference in a tracked file resolves to a file the repository tracks."""
    problems = _problems(_tracked_files())
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_are_for() -> None:
    """The patterns find an outside reference and a missing page (guards the guard)."""
    assert OUTSIDE_REFERENCE.search("see " + "DESIGN" + ".md")
    assert OUTSIDE_REFERENCE.search("(" + "design/" + "mpm-model.md §5)")
    assert OUTSIDE_REFERENCE.search("`/work/" + "shared/notes`")
    assert DOC_PATH.search("see " + "docs/" + "nowhere.md §2").group(1) == "nowhere.md"
    assert DOC_PATH.search("suites/" + "docs/" + "x.md") is None
    assert MD_LINK.search("[servers](servers.md#parent)").group(1) == "servers.md"
