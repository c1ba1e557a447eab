"""One-shot command line: `python -m langchain_dynaspark "your prompt"`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from langchain_dynaspark.chat_models import DEFAULT_MODEL, KNOWN_MODELS, ChatDynaspark
from langchain_dynaspark.errors import DynasparkError


def main(argv: Sequence[str] | None = None) -> int:
    """Send one prompt to Dynaspark and print the answer.

    Returns:
        The process exit status: 0 on success, 1 if the call failed.
    """
    parser = argparse.ArgumentParser(
        prog="python -m langchain_dynaspark",
        description="Ask Dynaspark one question and print the answer.",
    )
    parser.add_argument("prompt", help="the question or instruction to send")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model name (known: {', '.join(KNOWN_MODELS)}; default: %(default)s)",
    )
    parser.add_argument(
        "--base-url",
        help="service address (default: $DYNASPARK_BASE_URL or the public service)",
    )
    parser.add_argument(
        "--stream", action="store_true", help="print the answer as it streams in"
    )
    args = parser.parse_args(argv)
    options = {"base_url": args.base_url} if args.base_url else {}
    model = ChatDynaspark(model=args.model, **options)
    try:
        if args.stream:
            for chunk in model.stream(args.prompt):
                sys.stdout.write(chunk.text)
                sys.stdout.flush()
            sys.stdout.write("\n")
        else:
            sys.stdout.write(model.invoke(args.prompt).text + "\n")
    except DynasparkError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
