"""Messages -> prompt text (pure)."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_dynaspark.errors import DynasparkInputError
from langchain_dynaspark.prompt import build_prompt


def test_lone_human_message_is_sent_as_its_text() -> None:
    prompt = build_prompt([HumanMessage("What is 2 + 2?")])
    assert prompt.text == "What is 2 + 2?"
    assert prompt.images == ()


def test_conversation_is_a_labelled_transcript_ending_with_the_cue() -> None:
    prompt = build_prompt(
        [
            SystemMessage("Be terse."),
            HumanMessage("Hi"),
            AIMessage("Hello!"),
            HumanMessage("Bye"),
        ]
    )
    assert prompt.text == (
        "System: Be terse.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Bye\n\nAssistant:"
    )


def test_repeated_roles_are_kept_in_order() -> None:
    prompt = build_prompt(
        [
            SystemMessage("One."),
            SystemMessage("Two."),
            HumanMessage("First"),
            HumanMessage("Second"),
        ]
    )
    assert prompt.text == (
        "System: One.\n\nSystem: Two.\n\nUser: First\n\nUser: Second\n\nAssistant:"
    )


def test_names_are_shown_with_the_role() -> None:
    prompt = build_prompt(
        [HumanMessage("Hi", name="alice"), AIMessage("Hello", name="bot")]
    )
    assert prompt.text == "User (alice): Hi\n\nAssistant (bot): Hello\n\nAssistant:"


def test_a_named_lone_human_message_keeps_its_label() -> None:
    assert build_prompt([HumanMessage("Hi", name="bob")]).text == (
        "User (bob): Hi\n\nAssistant:"
    )


def test_custom_chat_message_roles_are_labelled() -> None:
    prompt = build_prompt([ChatMessage(role="critic", content="Too long.")])
    assert prompt.text == "Critic: Too long.\n\nAssistant:"


def test_tool_calls_and_results_are_rendered_for_the_next_turn() -> None:
    prompt = build_prompt(
        [
            HumanMessage("Weather in Paris?"),
            AIMessage(
                "",
                tool_calls=[
                    {"name": "get_weather", "args": {"city": "Paris"}, "id": "c1"}
                ],
            ),
            ToolMessage("18°C, clear", tool_call_id="c1", name="get_weather"),
            ToolMessage("boom", tool_call_id="c2", status="error"),
        ]
    )
    blocks = prompt.text.split("\n\n")
    label, _, call = blocks[1].partition(": ")
    assert label == "Assistant"
    assert json.loads(call) == {
        "tool_calls": [
            {"name": "get_weather", "arguments": {"city": "Paris"}, "id": "c1"}
        ]
    }
    assert blocks[2] == "Tool result (get_weather, call id c1): 18°C, clear"
    assert blocks[3] == "Tool error (call id c2): boom"
    assert blocks[4] == "Assistant:"


def test_list_content_text_blocks_are_joined() -> None:
    prompt = build_prompt(
        [
            SystemMessage(
                [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]
            ),
            HumanMessage("Go"),
        ]
    )
    assert prompt.text == "System: A\nB\n\nUser: Go\n\nAssistant:"


def test_instructions_come_first_even_for_a_lone_message() -> None:
    prompt = build_prompt([HumanMessage("Hi")], instructions="Answer in JSON.")
    assert prompt.text == "System: Answer in JSON.\n\nUser: Hi\n\nAssistant:"


def test_unicode_is_kept_verbatim() -> None:
    text = "Ünïcödé ✓ 你好 🚀 \u200b"
    assert build_prompt([HumanMessage(text)]).text == text


def test_no_messages_is_an_input_error() -> None:
    with pytest.raises(DynasparkInputError, match="at least one message"):
        build_prompt([])


@pytest.mark.parametrize(
    ("block", "named"),
    [
        (
            {"type": "file", "base64": "JVBERi0=", "mime_type": "application/pdf"},
            "file",
        ),
        ({"type": "audio", "base64": "AAAA", "mime_type": "audio/wav"}, "audio"),
        ({"type": "video", "url": "https://example.com/v.mp4"}, "video"),
    ],
)
def test_non_image_data_blocks_are_refused(block: dict, named: str) -> None:
    message = HumanMessage([{"type": "text", "text": "Look"}, block])
    with pytest.raises(DynasparkInputError, match=named) as info:
        build_prompt([message])
    assert isinstance(info.value, ValueError)
    assert "Supported: text, and images" in str(info.value)


def test_file_id_images_are_refused() -> None:
    message = HumanMessage([{"type": "image", "file_id": "file-123"}])
    with pytest.raises(DynasparkInputError, match="file_id"):
        build_prompt([message])
