"""deploy/Dockerfile as a typed model: stages, instructions, ARG, ENV, CMD, HEALTHCHECK.

The syntax is Docker's: the text is split into instructions by Docker's own
parser (the `dockerfile` package wraps moby/buildkit's Go parser), so line
continuations, comments, JSON (exec) forms and flags mean exactly what they
mean to `docker build`. This module adds the meaning the checks need on top:
which instructions belong to which stage, the global ARGs and their
substitution into FROM, ENV and LABEL pairs with their quotes removed, and the
exec-form argv of CMD and HEALTHCHECK. The deploy scripts and the tests both
read the Dockerfile through it; there is no second parser.
"""

from __future__ import annotations

import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dockerfile as docker_parser

__all__ = ["Copy", "Dockerfile", "DockerfileError", "Healthcheck", "Instruction", "Stage"]


class DockerfileError(ValueError):
    """The Dockerfile cannot be read, or lacks what a caller asked for."""


def unquote(word: str) -> str:
    """One ENV/LABEL/ARG value with its shell quotes removed (Docker keeps `${...}` as is)."""
    return " ".join(shlex.split(word))


@dataclass(frozen=True)
class Instruction:
    """One instruction: keyword, flags (`--from=...`) and words as Docker's parser splits them."""

    keyword: str
    words: tuple[str, ...]
    flags: tuple[str, ...]
    exec_form: bool
    line: int

    def flag(self, name: str) -> str | None:
        """The value of flag `--name=value` (the last one given), or None."""
        prefix = f"--{name}="
        values = [flag.removeprefix(prefix) for flag in self.flags if flag.startswith(prefix)]
        return values[-1] if values else None

    @property
    def text(self) -> str:
        """The arguments as one string: a RUN's shell command, a USER, a WORKDIR."""
        return " ".join(self.words)

    def pairs(self) -> dict[str, str]:
        """NAME=value pairs of ENV or LABEL, values unquoted."""
        if len(self.words) % 2:
            raise DockerfileError(f"line {self.line}: {self.keyword} without NAME=value pairs")
        names, values = self.words[::2], self.words[1::2]
        return {name: unquote(value) for name, value in zip(names, values, strict=True)}

    def argv(self) -> list[str]:
        """The exec-form argv of CMD or ENTRYPOINT; a shell form is refused."""
        if not self.exec_form:
            raise DockerfileError(
                f"line {self.line}: {self.keyword} {self.text!r} is not in exec (JSON) form"
            )
        return list(self.words)


@dataclass(frozen=True)
class Copy:
    """A COPY or ADD: its sources, destination and `--from` stage or image (None: the context)."""

    sources: tuple[str, ...]
    destination: str
    source_stage: str | None


@dataclass(frozen=True)
class Healthcheck:
    """A HEALTHCHECK CMD: its options (`interval` -> `15s`) and its exec-form argv."""

    options: dict[str, str]
    argv: list[str]


@dataclass(frozen=True)
class Stage:
    """One build stage: FROM's image (as written, `${ARG}` unexpanded), its name, the rest."""

    base: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[Instruction]:
        """Every instruction of this keyword, in order."""
        return [i for i in self.instructions if i.keyword == keyword.upper()]

    def last(self, keyword: str) -> Instruction:
        """The instruction of this keyword that takes effect (the last one)."""
        found = self.all(keyword)
        if not found:
            raise DockerfileError(f"stage {self.label}: no {keyword.upper()}")
        return found[-1]

    @property
    def label(self) -> str:
        """The stage's name, or its base image when unnamed (for messages)."""
        return self.name or self.base

    @property
    def args(self) -> dict[str, str | None]:
        """The stage's ARG declarations and their defaults (None: no default)."""
        return declared_args(self.all("ARG"))

    @property
    def env(self) -> dict[str, str]:
        """ENV as the stage sets it (later instructions win), `${...}` unexpanded."""
        env: dict[str, str] = {}
        for instruction in self.all("ENV"):
            env.update(instruction.pairs())
        return env

    @property
    def labels(self) -> dict[str, str]:
        """LABEL pairs of the stage."""
        labels: dict[str, str] = {}
        for instruction in self.all("LABEL"):
            labels.update(instruction.pairs())
        return labels

    @property
    def cmd(self) -> list[str]:
        """The effective CMD, which must be in exec form."""
        return self.last("CMD").argv()

    @property
    def user(self) -> str:
        """The effective USER."""
        return self.last("USER").text

    @property
    def runs(self) -> list[str]:
        """The shell commands of the RUN instructions."""
        return [i.text for i in self.all("RUN")]

    @property
    def copies(self) -> list[Copy]:
        """The COPY and ADD instructions."""
        return [
            Copy(tuple(i.words[:-1]), i.words[-1], i.flag("from"))
            for i in self.instructions
            if i.keyword in ("COPY", "ADD")
        ]

    @property
    def healthcheck(self) -> Healthcheck:
        """The effective HEALTHCHECK, which must be `CMD` in exec form."""
        instruction = self.last("HEALTHCHECK")
        if instruction.words[:1] != ("CMD",) or not instruction.exec_form:
            raise DockerfileError(f"line {instruction.line}: HEALTHCHECK is not CMD [exec form]")
        options = dict(flag.removeprefix("--").partition("=")[::2] for flag in instruction.flags)
        return Healthcheck(options, list(instruction.words[1:]))


def declared_args(instructions: list[Instruction]) -> dict[str, str | None]:
    """NAME -> default of ARG instructions (None when declared without one)."""
    args: dict[str, str | None] = {}
    for instruction in instructions:
        for word in instruction.words:
            name, sep, default = word.partition("=")
            args[name] = unquote(default) if sep else None
    return args


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: the global ARGs (before the first FROM) and its stages."""

    args: dict[str, str | None]
    stages: tuple[Stage, ...]

    @classmethod
    def load(cls, path: Path) -> Dockerfile:
        """Parse the Dockerfile at `path`."""
        return cls.parse(path.read_text(encoding="utf-8"))

    @classmethod
    def parse(cls, text: str) -> Dockerfile:
        """Parse Dockerfile text with Docker's parser, then group it into stages."""
        try:
            commands = docker_parser.parse_string(text)
        except docker_parser.GoParseError as error:
            raise DockerfileError(str(error)) from error
        preamble: list[Instruction] = []
        stages: list[tuple[str, str | None, list[Instruction]]] = []
        for command in commands:
            instruction = Instruction(
                keyword=str(command.cmd).upper(),
                words=tuple(str(word) for word in command.value),
                flags=tuple(str(flag) for flag in command.flags),
                exec_form=bool(command.json),
                line=int(command.start_line),
            )
            if instruction.keyword == "FROM":
                words = instruction.words
                if len(words) not in (1, 3) or (len(words) == 3 and words[1].upper() != "AS"):
                    raise DockerfileError(f"line {instruction.line}: FROM image [AS name]")
                stages.append((words[0], words[2] if len(words) == 3 else None, []))
            elif stages:
                stages[-1][2].append(instruction)
            elif instruction.keyword == "ARG":
                preamble.append(instruction)
            else:
                raise DockerfileError(f"line {instruction.line}: only ARG may precede FROM")
        if not stages:
            raise DockerfileError("no FROM")
        return cls(
            args=declared_args(preamble),
            stages=tuple(Stage(base, name, tuple(body)) for base, name, body in stages),
        )

    @property
    def final(self) -> Stage:
        """The last stage: the image that is built by default."""
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        """The stage named `name` (FROM ... AS name)."""
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise DockerfileError(f"no stage named {name!r}")

    def base_image(self, stage: Stage, build_args: Mapping[str, str] | None = None) -> str:
        """The stage's FROM image with the global ARGs (or `build_args`) substituted."""
        values = {name: value for name, value in self.args.items() if value is not None}
        values.update(build_args or {})
        try:
            return string.Template(stage.base).substitute(values)
        except (KeyError, ValueError) as error:
            raise DockerfileError(f"FROM {stage.base}: no value for {error}") from error
