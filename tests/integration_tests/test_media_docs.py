"""The examples of `docs/images-and-speech.md` run offline, and show what they say.

They run as `test_examples` runs the README's: in order, in one namespace, as a
reader pastes them, against the local server, as a script (no top-level
`await`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from langchain_dynaspark.testing.server import DynasparkTestServer
from tests.conftest import LIVE
from tests.integration_tests.test_examples import MAX_REQUESTS, _run, examples

PAGE = Path(__file__).parents[2] / "docs" / "images-and-speech.md"

pytestmark = pytest.mark.skipif(LIVE, reason="counts requests to the local server")


def test_the_page_examples_run_and_show_what_they_say(
    server: DynasparkTestServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DYNASPARK_BASE_URL", server.url)
    namespace: dict[str, Any] = {"__name__": "__example__"}
    values: list[Any] = []
    codes = examples(PAGE.read_text())
    assert len(codes) >= 10
    for code in codes:
        compile(code, "<docs example>", "exec")  # no top-level await
        before = len(server.requests)
        values += _run(code, namespace, allow_await=False)
        assert len(server.requests) - before < MAX_REQUESTS, code

    shown = [v for v in values if isinstance(v, (tuple, list)) and v]
    assert ("image", "image/png") in shown
    assert ("audio", "audio/mpeg") in shown
    assert ["image/png"] in shown
    assert ("Drew 'a red cat' with flux, 256x256", "image/png") in shown
    url_only = namespace["ChatDynaspark"](model="turbo", image_output="url")
    assert url_only.invoke("A fox").content[0].keys() == {"type", "url"}
    assert (tmp_path / "lighthouse.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "hello.mp3").read_bytes().startswith(b"ID3")
    assert "can neither call tools nor give structured output" in " ".join(
        capsys.readouterr().out.split()
    )
