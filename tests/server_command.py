"""The local server started as its command, `python -m ...testing.server`."""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

_ANNOUNCED = "Dynaspark test server on http://127.0.0.1:"


@contextmanager
def server_command(*options: str) -> Iterator[str]:
    """Run the server command on `--port 0` with `options`; yield the URL it announces.

    Fails the test (with the server's stderr) if it does not announce a bound
    address within 30 s; terminates the server afterwards.
    """
    command = [
        sys.executable,
        "-m",
        "langchain_dynaspark.testing.server",
        "--port",
        "0",
        *options,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    try:
        announced, _, _ = select.select([process.stdout], [], [], 30)
        line = process.stdout.readline() if announced else ""
        if not line.startswith(_ANNOUNCED):
            process.kill()
            _, stderr = process.communicate()
            pytest.fail(f"the server did not start ({line!r}):\n{stderr}")
        url = line.rsplit(" ", 1)[1].strip()
        assert not url.endswith(":0")
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=10)
