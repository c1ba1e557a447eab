"""The command line's pure parts: arguments, messages, JSON output, history."""

from __future__ import annotations

import base64
import io
import json
import threading
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from PIL import Image

from langchain_dynaspark import DynasparkImageError
from langchain_dynaspark.cli import main
from langchain_dynaspark.cli.chat import Conversation
from langchain_dynaspark.cli.options import (
    MODEL_OPTIONS,
    ModelOption,
    UsageError,
    model_kwargs,
    parse_args,
)
from langchain_dynaspark.cli.output import WakingNotice, one_line, reply_json
from langchain_dynaspark.cli.request import (
    image_block,
    one_shot_messages,
    request_text,
)


def png(size: tuple[int, int] = (30, 20), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def test_one_shot_options() -> None:
    args = parse_args(
        [
            *("-s", "Be terse.", "-m", "gemini-2.0-flash", "--base-url", "http://h:1"),
            *("-i", "a.png", "--image", "https://x/b.png", "--stream", "--json", "Hi"),
        ]
    )
    assert not args.chat
    assert args.prompt == "Hi"
    assert args.system == "Be terse."
    assert args.images == ["a.png", "https://x/b.png"]
    assert args.stream
    assert args.json
    assert model_kwargs(args) == {"model": "gemini-2.0-flash", "base_url": "http://h:1"}


def test_unset_options_keep_the_model_defaults() -> None:
    args = parse_args([])
    assert args.prompt is None
    assert args.images == []
    assert not args.stream
    assert not args.json
    assert model_kwargs(args) == {}


def test_chat_takes_the_same_conversation_and_model_options() -> None:
    args = parse_args(["chat", "-s", "Be terse.", "-m", "m", "-i", "a.png"])
    assert args.chat
    assert args.system == "Be terse."
    assert args.images == ["a.png"]
    assert model_kwargs(args) == {"model": "m"}
    assert parse_args(["--", "chat"]).prompt == "chat"


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["a", "b"], "unrecognized arguments: b"),
        (["-m"], "argument -m/--model: expected one argument"),
        (["chat", "a prompt"], "unrecognized arguments: a prompt"),
        (["chat", "--json"], "unrecognized arguments: --json"),
    ],
)
def test_bad_usage_is_one_line(argv: list[str], said: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_args(argv)
    message = str(caught.value)
    assert said in message
    assert "--help" in message
    assert "\n" not in message


def test_a_model_option_is_one_declaration(monkeypatch: pytest.MonkeyPatch) -> None:
    option = ModelOption(("--timeout",), "timeout", "seconds per attempt", float)
    monkeypatch.setattr(
        "langchain_dynaspark.cli.options.MODEL_OPTIONS", (*MODEL_OPTIONS, option)
    )
    args = parse_args(["--timeout", "7.5", "Hi"])
    assert model_kwargs(args) == {"timeout": 7.5}
    with pytest.raises(UsageError, match="invalid float value"):
        parse_args(["--timeout", "soon"])


@pytest.mark.parametrize(
    ("prompt", "piped", "text"),
    [
        (
            "Summarise this",
            "line one\nline two\n",
            "Summarise this\n\nline one\nline two",
        ),
        (None, "  the prompt\n", "the prompt"),
        ("Hi", None, "Hi"),
        ("Hi", "\n \n", "Hi"),
        (None, "", ""),
        (None, None, ""),
    ],
)
def test_request_text(prompt: str | None, piped: str | None, text: str) -> None:
    assert request_text(prompt, piped) == text


def test_one_shot_messages() -> None:
    image = {"type": "image", "url": "https://example.com/a.png"}
    assert one_shot_messages(None, "Hi", []) == [HumanMessage("Hi")]
    assert one_shot_messages("Be terse.", "Hi", [image]) == [
        SystemMessage("Be terse."),
        HumanMessage([{"type": "text", "text": "Hi"}, image]),
    ]
    assert one_shot_messages(None, "", [image]) == [HumanMessage([image])]
    with pytest.raises(UsageError, match="Nothing to send"):
        one_shot_messages("Be terse.", "", [])


def test_a_local_image_goes_through_the_image_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "big.bmp"
    Image.new("RGB", (3000, 1000), "blue").save(path, "BMP")
    block = image_block(str(path))
    assert block["type"] == "image"
    assert block["mime_type"] == "image/png"  # BMP is converted
    sent = Image.open(io.BytesIO(base64.b64decode(block["base64"])))
    assert sent.format == "PNG"
    assert sent.size == (2048, 683)  # scaled down to max_image_side


def test_urls_are_left_to_the_model() -> None:
    for url in ("https://example.com/a.png", "HTTP://x/y", "data:image/png;base64,AA"):
        assert image_block(url) == {"type": "image", "url": url}


def test_a_missing_or_unreadable_image_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.png: no such file\. Check the path"):
        image_block(str(tmp_path / "nope.png"))
    with pytest.raises(UsageError, match="cannot be read"):
        image_block(str(tmp_path))


@pytest.mark.parametrize("url", ["ftp://example.com/menu.png", "file:///menu.png"])
def test_a_url_of_another_scheme_says_which_urls_work(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        image_block(url)
    assert str(caught.value) == (
        f"Image {url}: only http(s) and data: URLs can be attached, or a local file."
    )


def test_a_file_that_is_not_an_image_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an image")
    with pytest.raises(DynasparkImageError, match=r"notes\.txt is not an image"):
        image_block(str(path))
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(png()[:60])
    with pytest.raises(DynasparkImageError, match=r"cut\.png"):
        image_block(str(truncated))


def test_reply_json_is_one_object_with_the_reply() -> None:
    message = AIMessage(
        "Bonjour ! ✓",
        tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}],
        response_metadata={"model_name": "m", "finish_reason": "tool_calls"},
    )
    line = reply_json(message)
    assert "\n" not in line
    assert json.loads(line) == {
        "content": "Bonjour ! ✓",
        "tool_calls": [
            {"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}
        ],
        "invalid_tool_calls": [],
        "response_metadata": {"model_name": "m", "finish_reason": "tool_calls"},
        "usage_metadata": None,
    }


def test_one_line() -> None:
    assert one_line(ValueError("first\n  second\n")) == "first second"
    assert one_line(KeyError()) == "KeyError"


def test_conversation_keeps_history_and_resets_to_the_system_prompt() -> None:
    image = {"type": "image", "url": "https://example.com/a.png"}
    chat = Conversation("Be terse.", [image])
    first = chat.next_messages("Hi")
    assert first == [
        SystemMessage("Be terse."),
        HumanMessage([{"type": "text", "text": "Hi"}, image]),
    ]
    assert chat.next_messages("Hi") == first  # nothing kept until recorded
    chat.record(first, "Hello.")
    second = chat.next_messages("And you?")
    assert second == [*first, AIMessage("Hello."), HumanMessage("And you?")]
    chat.reset()
    assert chat.next_messages("Again") == [
        SystemMessage("Be terse."),
        HumanMessage("Again"),
    ]


class FakeTerminal(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.wrote = threading.Event()

    def write(self, text: str) -> int:
        self.wrote.set()
        return super().write(text)


def test_the_waking_notice_counts_and_is_erased() -> None:
    stream = FakeTerminal()
    with WakingNotice(stream, enabled=True, after=0) as notice:
        assert stream.wrote.wait(30)
        notice.stop()
        shown = stream.getvalue()
    assert shown.startswith("\rWaiting 0 s for Dynaspark: it may be waking up...")
    line = shown.split("\r")[1]
    assert shown.endswith("\r" + " " * len(line) + "\r")


def test_the_waking_notice_is_silent_when_disabled_or_answered_in_time() -> None:
    stream = FakeTerminal()
    with WakingNotice(stream, enabled=False, after=0):
        pass
    with WakingNotice(stream, enabled=True, after=3600):
        pass
    assert stream.getvalue() == ""


def test_main_reports_bad_usage_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--bogus"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "error: unrecognized arguments: --bogus. "
        "Run `langchain-dynaspark --help` for usage.\n"
    )


def test_main_reports_a_missing_image_before_sending(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "cat.png"
    assert main(["--base-url", "http://127.0.0.1:9", "-i", str(missing), "Hi"]) == 2
    assert capsys.readouterr().err == (
        f"error: Image {missing}: no such file. Check the path.\n"
    )
