"""The agent's window and summary: what the model sees of a long run (pure)."""

from __future__ import annotations

from steward.blobs import BlobRef
from steward.conversation import (
    RESULT_OUTPUT_BUDGET,
    SUMMARY_LINES,
    AgentRun,
    AgentState,
    bounded,
    carried,
    fit,
    summary_line,
    summary_message,
    window,
)
from steward.models import ActionRecord, Message, ModelToolCall


def text(n: int, size: int = 100) -> Message:
    return Message(role="user", content=f"{n}:" + "x" * (size - len(f"{n}:")))


def test_the_window_keeps_the_newest_messages_that_fit() -> None:
    messages = [text(n) for n in range(10)]
    kept, dropped = window(messages, 350)
    assert kept == [7, 8, 9]
    assert dropped == list(range(7))
    assert window(messages, 10_000) == (list(range(10)), [])


def test_the_newest_message_is_kept_whatever_its_size() -> None:
    messages = [text(0), text(1, size=5_000)]
    assert window(messages, 100) == ([1], [0])
    assert window([], 100) == ([], [])


def test_stored_text_counts_in_full_against_the_window() -> None:
    ref = BlobRef(digest="a" * 64, size=100_000, preview="page")
    messages = [text(0), Message(role="user", content="header ", blob=ref), text(2)]
    assert messages[1].chars() == len("header ") + 100_000
    kept, dropped = window(messages, 50_000)
    assert kept == [2] and dropped == [0, 1]


def test_the_summary_names_what_fell_out_and_stays_bounded() -> None:
    ref = BlobRef(digest="b" * 64, size=100_000, preview="page")
    line = summary_line(Message(role="user", content="Result of http_get", blob=ref))
    assert "100,000 bytes stored as bbbbbbbbbbbb" in line
    assert len(summary_line(text(1, size=5_000))) <= 170
    lines = [f"- user: {n}" for n in range(100)]
    message = summary_message(lines, 250)
    assert message is not None
    assert "250 messages no longer shown" in message.content
    assert message.content.count("\n- user:") == SUMMARY_LINES
    assert "- user: 99" in message.content and "- user: 0\n" not in message.content
    assert summary_message([], 0) is None


def test_carried_actions_are_the_newest_with_short_outputs() -> None:
    records = [
        ActionRecord(
            call_id=f"call-{n}",
            tool="http_get",
            args_digest="d",
            decision="allow",
            reason="",
            outcome="done",
            output="y" * 10_000,
        )
        for n in range(600)
    ]
    kept = carried(records)
    assert len(kept) == 500 and kept[0].call_id == "call-100"
    assert all(len(record.output) == 500 for record in kept)
    assert len(records[0].output) == 10_000  # the originals are untouched


def test_a_plain_run_request_is_an_agent_run_without_state() -> None:
    run = AgentRun.model_validate({"target": "a", "input": "hi", "principal": "dana"})
    assert run.resume is None


def test_a_result_keeps_outputs_whole_unless_together_they_would_not_fit() -> None:
    def record(n: int, size: int) -> ActionRecord:
        return ActionRecord(
            call_id=f"call-{n}",
            tool="t",
            args_digest="d",
            decision="allow",
            reason="",
            outcome="done",
            output="z" * size,
        )

    small = [record(n, 16_000) for n in range(10)]
    assert bounded(small) == small
    large = [record(n, 16_000) for n in range(400)]  # 6.4 MB of output
    kept = bounded(large)
    assert len(kept) == 400
    assert sum(len(r.output) for r in kept) <= RESULT_OUTPUT_BUDGET
    assert len(bounded([record(n, 10) for n in range(900)])) == 500


def test_fit_keeps_what_fits_and_folds_the_rest_into_the_summary_once() -> None:
    state = AgentState(turn=3, messages=[text(n) for n in range(10)])
    fit(state, 350)
    assert [m.content[:2] for m in state.messages] == ["7:", "8:", "9:"]
    assert state.summarised == 7 and len(state.summary) == 7
    fit(state, 350)  # nothing more falls out: nothing is folded twice
    assert state.summarised == 7 and len(state.summary) == 7


def test_a_turn_that_called_tools_natively_is_summarised_by_its_calls() -> None:
    calls = [ModelToolCall(id="c1", name="http_get"), ModelToolCall(id="c2", name="write_file")]
    assert summary_line(Message(role="assistant", content="", tool_calls=calls)) == (
        "- assistant: called http_get, write_file"
    )
    assert summary_line(
        Message(role="assistant", content="Let me look.", tool_calls=calls[:1])
    ) == ("- assistant: Let me look. (called http_get)")
