"""The `langchain-dynaspark` command line (also `python -m langchain_dynaspark`).

- `options`: arguments -> options, and the `ChatDynaspark` fields they set;
- `request`: prompt, piped text and images -> the messages sent;
- `output`: replies written streamed or as JSON, the waking-up notice;
- `one_shot`, `chat`: the two forms of the command;
- `media`: a picture or speech, written to a file (`-o`).

Exit status: 0 done, 1 the service failed, 2 bad usage or input that cannot be
sent, 130 interrupted. Expected failures are reported on one line of standard
error, without a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from langchain_dynaspark.chat_models import ChatDynaspark
from langchain_dynaspark.cli.chat import run_chat
from langchain_dynaspark.cli.media import run_media
from langchain_dynaspark.cli.one_shot import run_one_shot
from langchain_dynaspark.cli.options import UsageError, model_kwargs, parse_args
from langchain_dynaspark.cli.output import one_line
from langchain_dynaspark.errors import DynasparkError, DynasparkInputError
from langchain_dynaspark.media import media_kind

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_USAGE", "main"]

EXIT_FAILED = 1
"""The service failed (or could not be reached)."""
EXIT_USAGE = 2
"""Bad usage, or input that cannot be sent."""
EXIT_INTERRUPTED = 130
"""Interrupted with Ctrl-C (128 + SIGINT)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments after the program name; `sys.argv[1:]` by default.

    Returns:
        The exit status.
    """
    try:
        args = parse_args(sys.argv[1:] if argv is None else list(argv))
        model = _model(args)
        if media_kind(args.model) is not None or getattr(args, "output", None):
            return run_media(args, model)
        return run_chat(args, model) if args.chat else run_one_shot(args, model)
    except (UsageError, DynasparkInputError) as exc:
        return _fail(exc, EXIT_USAGE)
    except DynasparkError as exc:
        return _fail(exc, EXIT_FAILED)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep Python from
        # reporting the failed flush of standard output at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED


def _model(args: argparse.Namespace) -> ChatDynaspark:
    try:
        return ChatDynaspark(**model_kwargs(args))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
            for error in exc.errors()
        )
        msg = f"Invalid option: {problems}"
        raise UsageError(msg) from None


def _fail(error: BaseException, status: int) -> int:
    sys.stderr.write(f"error: {one_line(error)}\n")
    return status
