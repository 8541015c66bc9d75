"""The hand-written SSE parser, on plain lists of lines."""

from __future__ import annotations

from services.cli.sse import SseMessage, parse_sse


def test_messages_are_split_on_blank_lines() -> None:
    lines = [
        "event: progress",
        'data: {"percent": 10}',
        "",
        "event: status",
        'data: {"status": "completed"}',
        "",
    ]
    assert list(parse_sse(lines)) == [
        SseMessage("progress", '{"percent": 10}'),
        SseMessage("status", '{"status": "completed"}'),
    ]


def test_comments_ids_and_keepalives_are_ignored() -> None:
    lines = [": keep-alive", "", "id: 7", "retry: 100", "event: progress", "data: {}", ""]
    assert list(parse_sse(lines)) == [SseMessage("progress", "{}")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    lines = ["data: {", 'data: "a": 1', "data: }", ""]
    assert list(parse_sse(lines)) == [SseMessage("message", '{\n"a": 1\n}')]


def test_only_one_space_after_the_colon_is_stripped_and_crlf_is_tolerated() -> None:
    lines = ["event:status\r\n", "data:  x\r\n", "\r\n"]
    assert list(parse_sse(lines)) == [SseMessage("status", " x")]


def test_a_message_cut_off_by_the_end_of_the_stream_is_dropped() -> None:
    lines = ["event: progress", "data: {}", "", "event: status", 'data: {"status": "comp']
    assert [m.event for m in parse_sse(lines)] == ["progress"]


def test_event_name_does_not_leak_into_the_next_message() -> None:
    lines = ["event: status", "", "data: 1", ""]
    assert list(parse_sse(lines)) == [SseMessage("message", "1")]
