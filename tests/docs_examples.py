"""Reading the documentation's examples: fenced code blocks, their commands, their `# ->` lines.

An example shows its expected output in comments after the command:
`# -> ` starts it and lines of `#` followed by four spaces continue it. The
output need only match in substance: `...` stands for anything, whitespace
runs count as one space, and JSON is compared as `json.dumps` writes it (the
service answers compactly; the docs show `{"key": "value"}`).
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<lang>[\w+-]*)\s*$")
EXPECTED = "# -> "
CONTINUED = "#    "


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block: where it is, its language, its text (indentation removed)."""

    path: Path
    line: int
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass(frozen=True, slots=True)
class Command:
    """One shell command (continuation lines joined) and the output its `# ->` lines show."""

    text: str
    expected: str | None


def code_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, in order."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != fence:
            body.append(lines[index].removeprefix(indent))
            index += 1
        line = index - len(body)
        blocks.append(Block(path, line, opening["lang"], "\n".join(body) + "\n"))
        index += 1
    return blocks


def without_comment(line: str) -> str:
    """The line less a trailing ` # comment` that is not inside quotes."""
    for at in (i for i, c in enumerate(line) if c == "#" and i > 0 and line[i - 1].isspace()):
        before = line[:at]
        if before.count("'") % 2 == 0 and before.count('"') % 2 == 0:
            return before.rstrip()
    return line


def commands(block: Block) -> list[Command]:
    """The block's commands, each with the output its `# ->` comment lines show, if any."""
    found: list[tuple[str, list[str]]] = []
    pending: list[str] = []
    expecting = False
    for raw in block.text.splitlines():
        line = raw.strip()
        if not line.startswith("#"):
            line = without_comment(line)
        if pending:
            pending.append(line.removesuffix("\\"))
            if not line.endswith("\\"):
                found.append((" ".join(pending), []))
                pending = []
            continue
        if line.startswith(EXPECTED) and found:
            found[-1][1].append(line.removeprefix(EXPECTED))
            expecting = True
        elif raw.lstrip().startswith(CONTINUED) and expecting:
            found[-1][1].append(line.removeprefix("#"))
        elif not line or line.startswith("#"):
            expecting = False
        elif line.endswith("\\"):
            expecting = False
            pending = [line.removesuffix("\\")]
        else:
            expecting = False
            found.append((line, []))
    return [Command(text, " ".join(shown) if shown else None) for text, shown in found]


def shown_in_python(block: Block) -> list[str]:
    """What a Python example's `# ->` comments say it prints, in order."""
    shown: list[str] = []
    expecting = False
    for raw in block.text.splitlines():
        line = raw.strip()
        if line.startswith(EXPECTED):
            shown.append(line.removeprefix(EXPECTED))
            expecting = True
        elif expecting and raw.lstrip().startswith(CONTINUED):
            shown[-1] += " " + line.removeprefix("#").strip()
        else:
            expecting = False
    return shown


def normalised(output: str) -> str:
    """Output as the docs write it: JSON re-dumped with spaces, whitespace runs as one space."""
    text = output.strip()
    with contextlib.suppress(ValueError):
        text = json.dumps(json.loads(text))
    return " ".join(text.split())


def pattern(shown: str) -> str:
    """A regular expression for what the docs show: `...` matches anything."""
    return ".*?".join(re.escape(part) for part in " ".join(shown.split()).split("..."))


def matches(shown: str, output: str) -> bool:
    """Whether `output` is, in substance, what the docs show for it."""
    return re.fullmatch(pattern(shown), normalised(output), re.DOTALL) is not None


def prints_in_order(shown: list[str], output: str) -> bool:
    """Whether a program's output has each shown line, in order (anything may lie between)."""
    lines = [normalised(line) for line in output.splitlines()]
    position = 0
    for expected in shown:
        while position < len(lines) and not re.fullmatch(pattern(expected), lines[position]):
            position += 1
        if position == len(lines):
            return False
        position += 1
    return True
