"""`langchain-dynaspark chat`: an interactive conversation on the terminal.

Each line typed is a turn; the whole conversation is sent with it, and the
answer streams in. `/reset` forgets the conversation (keeping the system
prompt), `/exit` or Ctrl-D leaves, and Ctrl-C stops the answer being written
and keeps the session. Lines are edited and recalled with the standard
library's `readline` where it exists. With standard input piped, each line is a
turn and no prompt is shown.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage

from langchain_dynaspark.cli.output import WakingNotice, one_line, stream_reply
from langchain_dynaspark.cli.request import image_block, user_message
from langchain_dynaspark.errors import DynasparkError

__all__ = ["COMMANDS", "PROMPT", "Conversation", "run_chat"]

PROMPT = "> "
COMMANDS = {
    "/reset": "forget the conversation",
    "/exit": "leave, or Ctrl-D",
    "/help": "these commands",
}
_HELP = ", ".join(f"{name} ({meaning})" for name, meaning in COMMANDS.items())


class Conversation:
    """The history of one chat session. Pure: no I/O.

    Images given on the command line go with the first message sent.
    """

    def __init__(
        self, system: str | None, images: Sequence[dict[str, Any]] = ()
    ) -> None:
        self._start: list[BaseMessage] = [SystemMessage(system)] if system else []
        self.history: list[BaseMessage] = list(self._start)
        self._images = list(images)

    def next_messages(self, text: str) -> list[BaseMessage]:
        """The conversation so far, then the user's new message."""
        return [*self.history, user_message(text, self._images)]

    def record(self, messages: Sequence[BaseMessage], reply: str) -> None:
        """Keep a finished turn: the messages sent and the reply."""
        self.history = [*messages, AIMessage(reply)]
        self._images = []

    def reset(self) -> None:
        """Forget the conversation (and images not sent yet); keep the system prompt."""
        self.history = list(self._start)
        self._images = []


def run_chat(args: argparse.Namespace, model: BaseChatModel) -> int:
    """Hold a conversation until `/exit` or the end of input.

    Args:
        args: Parsed options.
        model: The chat model to talk to.

    Returns:
        The exit status, 0.

    Raises:
        UsageError: If an image given cannot be read.
        DynasparkImageError: If an image given is not one that can be sent.
    """
    conversation = Conversation(
        args.system, [image_block(source) for source in args.images]
    )
    interactive = sys.stdin.isatty()
    if interactive:
        _enable_line_editing()
        sys.stderr.write(f"Chatting with Dynaspark. Commands: {_HELP}.\n")
    answered = False
    while True:
        try:
            line = input(PROMPT if interactive else "").strip()
        except EOFError:
            if interactive:
                sys.stdout.write("\n")
            return 0
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            continue
        if line == "/exit":
            return 0
        if line.startswith("/"):
            _command(line, conversation)
            continue
        if line:
            answered = _turn(model, conversation, line, wake=not answered) or answered


def _turn(
    model: BaseChatModel, conversation: Conversation, text: str, *, wake: bool
) -> bool:
    """Ask, stream the answer and keep the turn; whether an answer came."""
    messages = conversation.next_messages(text)
    try:
        with WakingNotice(sys.stderr, enabled=wake and sys.stderr.isatty()) as notice:
            reply = stream_reply(model, messages, sys.stdout, notice)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        sys.stderr.write("(answer stopped)\n")
        return False
    except DynasparkError as exc:
        sys.stderr.write(f"error: {one_line(exc)}\n")
        return False
    conversation.record(messages, reply)
    return True


def _command(line: str, conversation: Conversation) -> None:
    if line == "/reset":
        conversation.reset()
        sys.stderr.write("(conversation forgotten)\n")
    elif line == "/help":
        sys.stderr.write(f"Commands: {_HELP}.\n")
    else:
        sys.stderr.write(
            f"Unknown command {line.split(maxsplit=1)[0]}. Commands: {_HELP}.\n"
        )


def _enable_line_editing() -> None:
    """Turn on `input()` line editing and history, where `readline` exists."""
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401, PLC0415 (importing it is what enables it)
