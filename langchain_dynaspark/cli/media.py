"""`langchain-dynaspark -m flux "a red cat" -o cat.png`: pictures and speech.

With an image model, the picture is written to `-o FILE` (its path printed), or
without `-o` its URL is printed (nothing is downloaded). With `openai-audio`,
the speech is written to `-o FILE` (its path printed), or to standard output
when that is a pipe or a file; never to a terminal.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path

from langchain_core.language_models.chat_models import BaseChatModel

from langchain_dynaspark.cli.one_shot import read_piped
from langchain_dynaspark.cli.options import UsageError
from langchain_dynaspark.cli.output import WakingNotice
from langchain_dynaspark.cli.request import image_block, one_shot_messages, request_text
from langchain_dynaspark.media import media_kind

__all__ = ["run_media"]


def run_media(args: argparse.Namespace, model: BaseChatModel) -> int:
    """Ask an image or speech model, and write what it answers.

    Args:
        args: Parsed options; `output` is the file to write, if any.
        model: The image or speech model to ask.

    Returns:
        The exit status, 0.

    Raises:
        UsageError: In chat mode, with `-o` for a text model, if audio would
            go to a terminal, or if the file cannot be written.
        DynasparkError: If the request fails.
    """
    kind = media_kind(args.model)
    if args.chat or kind is None:
        msg = (
            "`chat` is for text models; an image or speech model answers one "
            "prompt: drop `chat`."
            if args.chat
            else "-o writes pictures and speech: use it with an image model "
            "(-m flux) or -m openai-audio."
        )
        raise UsageError(msg)
    speech = kind == "speech"
    if speech and args.output is None and sys.stdout.isatty():
        msg = (
            "Refusing to write MP3 audio to a terminal: give -o FILE (e.g. -o "
            "hello.mp3), or pipe the output to a file or a player."
        )
        raise UsageError(msg)
    images = [image_block(source) for source in args.images]
    text = request_text(args.prompt, read_piped(sys.stdin))
    messages = one_shot_messages(args.system, text, images)
    with WakingNotice(sys.stderr, enabled=sys.stderr.isatty()):
        reply = model.invoke(messages)
    (block,) = (b for b in reply.content if isinstance(b, dict))
    if args.output is None and not speech:
        sys.stdout.write(reply.response_metadata["image_url"] + "\n")
        return 0
    data = base64.b64decode(block["base64"])
    if args.output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return 0
    path = Path(args.output)
    try:
        path.write_bytes(data)
    except OSError as exc:
        msg = f"Cannot write {path}: {exc.strerror or exc}."
        raise UsageError(msg) from None
    sys.stdout.write(f"{path}\n")
    return 0
