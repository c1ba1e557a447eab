"""Command-line arguments -> options for one run. Pure: no I/O.

`ChatDynaspark` settings are declared once, in `MODEL_OPTIONS`: each entry is
one flag and the model field it sets, so exposing another field on the command
line is one line there. Both forms of the command (one-shot and `chat`) share
them, together with the conversation options (`--system`, `--image`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from langchain_dynaspark._version import __version__
from langchain_dynaspark.chat_models import DEFAULT_MODEL, KNOWN_MODELS
from langchain_dynaspark.media import IMAGE_MODELS, SPEECH_MODEL, VOICES, media_kind

__all__ = [
    "MODEL_OPTIONS",
    "PROG",
    "ModelOption",
    "UsageError",
    "model_kwargs",
    "parse_args",
]

PROG = "langchain-dynaspark"
CHAT = "chat"


class UsageError(Exception):
    """The command line, or the input it names, cannot be used (exit status 2)."""


@dataclass(frozen=True)
class ModelOption:
    """One command-line flag that sets one `ChatDynaspark` field.

    Attributes:
        flags: The option strings, e.g. `("-m", "--model")`.
        field: The `ChatDynaspark` field it sets.
        help: The help text.
        type: Converts the argument's text to the field's value.
        choices: The values the flag accepts, when they are few.
    """

    flags: tuple[str, ...]
    field: str
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None


MODEL_OPTIONS: tuple[ModelOption, ...] = (
    ModelOption(
        ("-m", "--model"),
        "model",
        f"model name (known: {', '.join(KNOWN_MODELS)}; default: {DEFAULT_MODEL} "
        "on the form, the service's own on the API); image models "
        f"{', '.join(IMAGE_MODELS)} draw, {SPEECH_MODEL} speaks",
    ),
    ModelOption(
        ("--base-url",),
        "base_url",
        "service address (default: $DYNASPARK_BASE_URL, else the public service)",
    ),
    ModelOption(
        ("--endpoint",),
        "endpoint",
        "which surface of the service: auto (default: the documented API where "
        "a call fits, else the web form), form (takes images) or api (text "
        "only: sampling, token usage, token-by-token streaming)",
        choices=("auto", "form", "api"),
    ),
    ModelOption(
        ("--temperature",),
        "temperature",
        "sampling temperature, 0 to 3 (sent on the API; the form ignores it)",
        float,
    ),
    ModelOption(
        ("--seed",),
        "seed",
        "sampling seed (sent on the API and to image models; the form ignores it)",
        int,
    ),
    ModelOption(("--width",), "width", "picture width, 64 to 2048 (image models)", int),
    ModelOption(
        ("--height",), "height", "picture height, 64 to 2048 (image models)", int
    ),
    ModelOption(
        ("--voice",),
        "voice",
        f"the voice of {SPEECH_MODEL} (default: alloy)",
        choices=VOICES,
    ),
)
"""The `ChatDynaspark` fields the command line sets; unset flags keep defaults."""


class _Parser(argparse.ArgumentParser):
    """An argument parser that reports bad usage as one line, via `UsageError`."""

    def error(self, message: str) -> NoReturn:
        msg = f"{message}. Run `{self.prog} --help` for usage."
        raise UsageError(msg)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the command line: `[chat] [options] [prompt]`.

    Args:
        argv: The arguments after the program name.

    Returns:
        The options; `chat` is `True` for an interactive conversation.

    Raises:
        UsageError: If the arguments are not valid.
    """
    if argv and argv[0] == CHAT:
        args = _chat_parser().parse_args(argv[1:])
        args.chat = True
    else:
        args = _one_shot_parser().parse_args(argv)
        args.chat = False
    return args


def model_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The `ChatDynaspark` arguments the command line gave (unset ones are left out).

    Args:
        args: Parsed options, from `parse_args`.

    Returns:
        Keyword arguments for `ChatDynaspark(...)`.
    """
    values = {option.field: getattr(args, option.field) for option in MODEL_OPTIONS}
    kwargs = {field: value for field, value in values.items() if value is not None}
    if media_kind(args.model) == "image" and getattr(args, "output", None) is None:
        kwargs["image_output"] = "url"  # only the URL is printed: no download
    return kwargs


def _one_shot_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=(
            "Ask Dynaspark one question and print the answer. Text piped to "
            "standard input is sent after the prompt, or as the prompt when none "
            f"is given. Run `{PROG} {CHAT} --help` for an interactive conversation."
        ),
        epilog=_EXIT_STATUS,
    )
    parser.add_argument("prompt", nargs="?", help="the question or instruction to send")
    _add_common(parser)
    parser.add_argument(
        "--stream", action="store_true", help="print the answer as it streams in"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help=(
            "print the reply as one JSON object: content, tool_calls, "
            "invalid_tool_calls, response_metadata, usage_metadata"
        ),
    )
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=(
            "write the picture (image models) or the MP3 speech "
            f"({SPEECH_MODEL}) to FILE and print its path"
        ),
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    return parser


def _chat_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{PROG} {CHAT}",
        description=(
            "Talk with Dynaspark. The conversation is kept and sent with every "
            "message; answers stream in. Type /reset to forget it, /exit or "
            "Ctrl-D to leave; Ctrl-C stops an answer and keeps the session."
        ),
        epilog=_EXIT_STATUS,
    )
    _add_common(parser)
    return parser


def _add_common(parser: argparse.ArgumentParser) -> None:
    for option in MODEL_OPTIONS:
        parser.add_argument(
            *option.flags,
            dest=option.field,
            type=option.type,
            choices=option.choices,
            help=option.help,
        )
    parser.add_argument("-s", "--system", metavar="TEXT", help="a system prompt")
    parser.add_argument(
        "-i",
        "--image",
        dest="images",
        metavar="PATH_OR_URL",
        action="append",
        default=[],
        help="attach an image file or http(s) URL (repeatable)",
    )


_EXIT_STATUS = (
    "exit status: 0 done, 1 the service failed, 2 bad usage or input that "
    "cannot be sent, 130 interrupted (Ctrl-C)"
)
