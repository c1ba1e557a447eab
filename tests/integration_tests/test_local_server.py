"""The local server's command line and admin routes, as a user drives them."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from langchain_dynaspark import ChatDynaspark
from langchain_dynaspark.testing.server import DynasparkTestServer
from tests.conftest import LIVE
from tests.server_command import server_command

pytestmark = pytest.mark.skipif(LIVE, reason="about the local server")


def _post(url: str, body: bytes) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    "body",
    [
        b'"Bonjour"',
        b"not json",
        b'{"text": "Bonjour"}',
        b"[42]",
        b'[{"texte": "Bonjour"}]',
        b'[{"status": "503"}]',
        b'[{"headers": {"Retry-After": 1}}]',
    ],
    ids=["bare-string", "not-json", "object", "number", "unknown", "type", "header"],
)
def test_a_malformed_script_is_a_400_that_says_what_was_expected(
    server: DynasparkTestServer, body: bytes
) -> None:
    status, answer = _post(f"{server.url}/__admin__/script", body)

    assert status == 400
    assert "Expected a JSON list of replies" in str(answer["error"])
    assert server.requests == []
    assert ChatDynaspark(base_url=server.url).invoke("Hi").text == "Echo: Hi"


def test_a_script_of_strings_and_objects_is_queued(server: DynasparkTestServer) -> None:
    status, answer = _post(
        f"{server.url}/__admin__/script", b'["Bonjour", {"text": "Salut"}]'
    )

    assert (status, answer) == (200, {"queued": 2})
    model = ChatDynaspark(base_url=server.url)
    assert [model.invoke("Hi").text for _ in range(3)] == [
        "Bonjour",
        "Salut",
        "Echo: Hi",
    ]


@pytest.fixture
def files_server(tmp_path: Path) -> Iterator[str]:
    """`python -m langchain_dynaspark.testing.server --port 0 --files DIR`."""
    (tmp_path / "dot.png").write_bytes(b"\x89PNG fake")
    (tmp_path / "notes.txt").write_text("hello")
    with server_command("--files", str(tmp_path)) as url:
        yield url


def test_the_command_serves_files_from_a_directory(files_server: str) -> None:
    with urllib.request.urlopen(f"{files_server}/files/dot.png", timeout=10) as got:
        assert got.read() == b"\x89PNG fake"
        assert got.headers["Content-Type"] == "image/png"
    with urllib.request.urlopen(f"{files_server}/files/notes.txt", timeout=10) as got:
        assert got.read() == b"hello"
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{files_server}/files/other.png", timeout=10)
    with missing.value:
        assert missing.value.code == 404
