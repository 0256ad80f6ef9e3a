"""What the policy fixed, compared with what OpenAI echoes (service/calls/fixed.py)."""

from __future__ import annotations

from typing import Any

from service.calls.breaches import foreign_instructions, readable, size_of, tool_breach
from service.calls.fixed import MAX_DEPTH, deeper_than, overridden, restoring, revertible
from service.policy import Policy

MCP_TOOL = {
    "type": "mcp",
    "server_label": "crm",
    "server_url": "https://mcp.example.com/mcp",
    "authorization": "secret-token",
}


class TestOverridden:
    """Echoes that keep the policy are not overrides; changes are."""

    def test_dated_snapshot_of_the_model_is_the_same_model(self) -> None:
        """An alias echoed as the snapshot it resolved to is no override."""
        fixed = {"model": "gpt-realtime-2"}
        assert overridden(fixed, {"model": "gpt-realtime-2-2026-08-28"}) == []
        assert overridden(fixed, {"model": "gpt-realtime-2.1-mini"}) == ["model"]

    def test_mcp_credentials_not_echoed_are_no_override(self) -> None:
        """OpenAI does not echo an MCP tool's credentials; their absence changes nothing."""
        echoed = {k: v for k, v in MCP_TOOL.items() if k != "authorization"}
        assert overridden({"tools": [MCP_TOOL]}, {"tools": [echoed]}) == []
        assert overridden({"tools": [MCP_TOOL]}, {"tools": []}) == ["tools"]

    def test_null_empty_and_absent_are_alike(self) -> None:
        """No tools fixed: `[]`, null and absent all keep it; tracing null stays null."""
        fixed: dict[str, Any] = {"tools": [], "tracing": None}
        assert overridden(fixed, {}) == []
        assert overridden(fixed, {"tools": None, "tracing": None}) == []
        assert overridden(fixed, {"tracing": "auto"}) == ["tracing"]


def nested(depth: int) -> list[Any]:
    """A list `depth` lists deep, built without recursion."""
    value: list[Any] = []
    for _ in range(depth - 1):
        value = [value]
    return value


class TestDepth:
    """Values nested past Python's recursion limit are judged without recursion."""

    def test_depth_is_counted_in_objects_and_lists(self) -> None:
        """`deeper_than` counts nested containers; scalars add nothing."""
        assert not deeper_than(nested(MAX_DEPTH), MAX_DEPTH)
        assert deeper_than(nested(MAX_DEPTH + 1), MAX_DEPTH)
        assert not deeper_than({"a": {"b": "deep string"}}, 2)
        assert deeper_than({"a": {"b": []}}, 2)

    def test_too_deep_echo_is_an_override(self) -> None:
        """A fixed field echoed 990 deep is overridden, without a RecursionError."""
        fixed: dict[str, Any] = {"tools": [], "tracing": None}
        assert overridden(fixed, {"tools": nested(990), "tracing": {"a": nested(990)}}) == [
            "tools",
            "tracing",
        ]

    def test_too_deep_unfixed_field_is_read_without_it(self) -> None:
        """`readable` leaves out a field nested 990 deep, names it, and reads the rest."""
        session: dict[str, Any] = {"audio": {"input": {"noise_reduction": {"type": nested(990)}}}}
        session["audio"]["output"] = {"speed": 1.1}
        request, unread = readable("realtime", session, {})
        assert request is not None
        assert "audio.input.noise_reduction" in unread
        assert request.model_dump(exclude_none=True)["audio"]["output"]["speed"] == 1.1


class TestOddValues:
    """Lists where OpenAI sends names or ids are judged, never a fault (a set lookup raises)."""

    def test_listed_server_label_is_a_breach(self) -> None:
        """An MCP call whose `server_label` is a list names no offered server."""
        assert tool_breach(Policy(), {"type": "mcp_call", "server_label": ["crm"]}) == (
            "server_label"
        )

    def test_listed_role_or_id_of_a_message(self) -> None:
        """A listed role is no system message; a system message with a listed id is foreign."""
        policy = Policy(instructions="Be brief.", instructions_mode="server")
        assert not foreign_instructions(policy, {"type": "message", "role": ["system"]}, set())
        item = {"type": "message", "role": "system", "id": ["item_1"]}
        assert foreign_instructions(policy, item, {"item_1"})

    def test_too_deep_content_has_no_size(self) -> None:
        """Content nested 990 deep (orjson writes 254 at most) has no size, and no fault."""
        assert size_of({"content": nested(990)}) is None
        assert size_of({"content": [{"type": "input_text", "text": "hi"}]}) == 35


class TestRestoring:
    def test_only_the_named_paths_nested(self) -> None:
        """The session.update carries exactly the overridden paths, nested as the GA shape."""
        fixed: dict[str, Any] = {"audio.output.voice": "alloy", "tracing": None, "tools": []}
        assert restoring("realtime", fixed, ["audio.output.voice"]) == {
            "type": "session.update",
            "session": {"type": "realtime", "audio": {"output": {"voice": "alloy"}}},
        }

    def test_model_is_not_revertible(self) -> None:
        assert revertible(["tracing", "audio.output.voice"])
        assert not revertible(["model"])

    def test_a_path_within_another_is_left_to_it(self) -> None:
        """A rule restoring a whole object and a fixed field inside it: one value, no clash."""
        values: dict[str, Any] = {
            "audio.input.transcription": {"model": "gpt-transcribe"},
            "audio.input.transcription.model": "gpt-transcribe",
        }
        paths = ["audio.input.transcription.model", "audio.input.transcription"]
        assert restoring("realtime", values, paths)["session"] == {
            "type": "realtime",
            "audio": {"input": {"transcription": {"model": "gpt-transcribe"}}},
        }

    def test_values_are_copied(self) -> None:
        """The update holds copies: changing it cannot change what the record keeps."""
        fixed: dict[str, Any] = {"tools": [{"type": "function", "name": "weather"}]}
        restoring("realtime", fixed, ["tools"])["session"]["tools"][0]["name"] = "other"
        assert fixed["tools"][0]["name"] == "weather"
