"""`langchain-dynaspark "prompt"`: one request, its answer on standard output."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from langchain_core.language_models.chat_models import BaseChatModel

from langchain_dynaspark.cli.options import UsageError
from langchain_dynaspark.cli.output import WakingNotice, reply_json, stream_reply
from langchain_dynaspark.cli.request import image_block, one_shot_messages, request_text

__all__ = ["read_piped", "run_one_shot"]


def run_one_shot(args: argparse.Namespace, model: BaseChatModel) -> int:
    """Send the prompt (with piped text and images) and print the answer.

    Args:
        args: Parsed options.
        model: The chat model to ask.

    Returns:
        The exit status, 0.

    Raises:
        UsageError: If there is nothing to send, or an input cannot be read.
        DynasparkError: If the request fails.
    """
    images = [image_block(source) for source in args.images]
    text = request_text(args.prompt, read_piped(sys.stdin))
    messages = one_shot_messages(args.system, text, images)
    with WakingNotice(sys.stderr, enabled=sys.stderr.isatty()) as notice:
        if args.json:
            reply = model.invoke(messages)
            notice.stop()
            sys.stdout.write(reply_json(reply) + "\n")
        elif args.stream:
            stream_reply(model, messages, sys.stdout, notice)
        else:
            answer = model.invoke(messages).text
            notice.stop()
            sys.stdout.write(answer + "\n")
    return 0


def read_piped(stdin: TextIO | None) -> str | None:
    """The text piped to standard input, or `None` when it is a terminal.

    Raises:
        UsageError: If the piped data is not UTF-8 text.
    """
    if stdin is None or stdin.isatty():
        return None
    data = stdin.buffer.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        msg = (
            "Standard input is not UTF-8 text. Pipe text in, and attach images "
            "with -i PATH."
        )
        raise UsageError(msg) from None
