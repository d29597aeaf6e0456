"""The documentation cannot rot: its Python examples run, its commands parse, and the README's links lead somewhere.

Every ```python block of README.md and docs/ runs, in order, in one namespace per page and in a fresh folder;
a block marked ``<!-- example: skip REASON -->`` on the line before it is reported as a skipped test with that
reason instead. Every ``made ...`` line of a ```bash block must parse with made's own argument parser.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from made.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").rglob("*.md")])
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
SKIP = re.compile(r"<!-- example: skip (.+?) -->\s*$")


@dataclass
class Block:
    """One fenced code block of a page: its language, its code, its first line, and why it is skipped (if so)."""

    page: Path
    language: str
    code: str
    line: int
    skip: str | None

    @property
    def name(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order."""
    text = page.read_text()
    found = []
    for match in BLOCK.finditer(text):
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        line = text.count("\n", 0, match.start()) + 2  # the block's first line of code
        found.append(Block(page, match.group(1), match.group(2), line, skip.group(1) if skip else None))
    return found


def python_pages() -> list[Path]:
    return [page for page in PAGES if any(b.language == "python" for b in blocks(page))]


def skipped_blocks() -> list[Block]:
    return [b for page in PAGES for b in blocks(page) if b.skip]


@pytest.mark.parametrize("page", python_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_python_examples_of_a_page_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block in blocks(page):
        if block.language == "python" and not block.skip:
            exec(compile(block.code, block.name, "exec"), namespace)  # a traceback names the page and line


@pytest.mark.parametrize("block", skipped_blocks(), ids=lambda b: b.name)
def test_a_skipped_example_says_why(block):
    pytest.skip(f"{block.name}: {block.skip}")


def made_commands(code: str) -> list[str]:
    """The ``made ...`` commands of a shell block (after ``&&``, and ``-m made`` under torchrun)."""
    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            if words[:1] == ["made"]:
                commands.append(words[1:])
            elif "-m" in words and words[words.index("-m") + 1 :][:1] == ["made"]:
                commands.append(words[words.index("-m") + 2 :])
    return commands


def test_every_made_command_in_the_docs_parses():
    parser = build_parser()
    checked = 0
    for page in PAGES:
        for block in blocks(page):
            if block.language not in ("bash", "sh"):
                continue
            for words in made_commands(block.code):
                try:
                    parser.parse_args(words)
                except SystemExit:
                    pytest.fail(f"{block.name}: 'made {shlex.join(words)}' does not parse")
                checked += 1
    assert checked >= 10  # the pages' commands were found


def test_the_readme_links_name_files_of_the_repository():
    text = (ROOT / "README.md").read_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", text) if "://" not in t]
    assert targets
    assert [t for t in targets if t and not (ROOT / t).exists()] == []
