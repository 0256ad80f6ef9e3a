"""deploy/dockerfile.py: the Dockerfile model the deploy scripts and tests share."""

from __future__ import annotations

import pytest

from deploy.dockerfile import Dockerfile, DockerfileError

SAMPLE = """\
# syntax=docker/dockerfile:1
ARG BASE=debian:bookworm
ARG UNSET

FROM ${BASE} AS build
# a comment inside a continued instruction
ENV A=1 \\
    # ignored
    B="two words"
ENV C 3
RUN --mount=type=cache,target=/root/.cache \\
    echo one \\
    && echo two
COPY a.txt b.txt ./

FROM $BASE
COPY --from=build /out /out
USER 10001:10001
CMD ["python", "-m", "service"]
HEALTHCHECK --interval=5s CMD ["true"]
"""


class TestDockerfileModel:
    def test_global_args_precede_the_first_stage(self) -> None:
        """ARGs before FROM are global, with their defaults (None when declared bare)."""
        assert Dockerfile.parse(SAMPLE).args == {"BASE": "debian:bookworm", "UNSET": None}

    def test_stages_keep_their_names_and_instructions(self) -> None:
        """Each FROM opens a stage; its instructions are the ones up to the next FROM."""
        parsed = Dockerfile.parse(SAMPLE)
        assert [(s.base, s.name) for s in parsed.stages] == [("${BASE}", "build"), ("$BASE", None)]
        assert [i.keyword for i in parsed.stage("build").instructions] == [
            "ENV",
            "ENV",
            "RUN",
            "COPY",
        ]

    def test_continuations_and_comments_are_joined_as_docker_does(self) -> None:
        """A continued RUN is one command, its flags apart, comments inside it dropped."""
        run = Dockerfile.parse(SAMPLE).stage("build").last("RUN")
        assert run.flags == ("--mount=type=cache,target=/root/.cache",)
        assert " ".join(run.text.split()) == "echo one && echo two"

    def test_env_pairs_lose_their_quotes(self) -> None:
        """ENV's NAME=value and legacy NAME value forms both give unquoted values."""
        assert Dockerfile.parse(SAMPLE).stage("build").env == {
            "A": "1",
            "B": "two words",
            "C": "3",
        }

    def test_base_image_substitutes_global_args(self) -> None:
        """FROM ${BASE} and $BASE take the ARG default, or the build argument given."""
        parsed = Dockerfile.parse(SAMPLE)
        assert parsed.base_image(parsed.final) == "debian:bookworm"
        assert parsed.base_image(parsed.final, {"BASE": "other:1"}) == "other:1"

    def test_base_image_without_a_value_is_an_error(self) -> None:
        """A FROM whose ARG has no default and no build argument names the problem."""
        parsed = Dockerfile.parse("ARG BASE\nFROM ${BASE}\n")
        with pytest.raises(DockerfileError, match="no value"):
            parsed.base_image(parsed.final)

    def test_copies_name_their_source_stage(self) -> None:
        """COPY --from=stage is told apart from a COPY out of the build context."""
        parsed = Dockerfile.parse(SAMPLE)
        copies = [c for s in parsed.stages for c in s.copies]
        assert [(c.sources, c.destination, c.source_stage) for c in copies] == [
            (("a.txt", "b.txt"), "./", None),
            (("/out",), "/out", "build"),
        ]

    def test_cmd_and_healthcheck_are_exec_form_argvs(self) -> None:
        """CMD and HEALTHCHECK CMD give their JSON argv; HEALTHCHECK its options."""
        final = Dockerfile.parse(SAMPLE).final
        assert final.cmd == ["python", "-m", "service"]
        assert final.healthcheck.argv == ["true"]
        assert final.healthcheck.options == {"interval": "5s"}
        assert final.user == "10001:10001"

    def test_shell_form_cmd_is_refused(self) -> None:
        """A shell-form CMD (run under /bin/sh, signals lost) is an error, not an argv."""
        with pytest.raises(DockerfileError, match="exec"):
            _ = Dockerfile.parse("FROM a\nCMD python -m service\n").final.cmd

    def test_only_arg_may_precede_from(self) -> None:
        """An instruction other than ARG before the first FROM is refused."""
        with pytest.raises(DockerfileError, match="precede"):
            Dockerfile.parse("ENV A=1\nFROM a\n")

    def test_missing_instruction_is_named(self) -> None:
        """Asking for an instruction a stage lacks raises an error naming it."""
        with pytest.raises(DockerfileError, match="no USER"):
            _ = Dockerfile.parse("FROM a\n").final.user

    def test_no_from_is_an_error(self) -> None:
        """Text without any stage is not a Dockerfile."""
        with pytest.raises(DockerfileError, match="no FROM"):
            Dockerfile.parse("ARG A=1\n")
