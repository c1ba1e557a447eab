"""Every Python example in README.md, docs/*.md and the docstring runs offline.

Each document's examples (the README, each `docs/` page, the `ChatDynaspark`
docstring) run in order in one namespace, as a reader pastes them one after
another, against the local server (the literal-minded stand-in answers; the
README's and the pages' examples run a second time with the notebooks' rules,
as the README's offline set-up starts the server), with `DYNASPARK_BASE_URL`
pointing at it and the files the
examples read (`receipt.jpg`, `cat.jpg`) in the working directory. An example
that needs the internet says so in a `# Needs ...` comment and is skipped with
that reason. The README's and the pages' examples must run as a script (no
top-level `await`); the docstring's follow LangChain's docstrings, which
`await` at top level.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import io
import json
import re
import textwrap
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from langchain_dynaspark import ChatDynaspark
from langchain_dynaspark.testing.server import DynasparkTestServer, Rule
from tests.conftest import LIVE

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
TOOLS_PAGE = "docs/tools-and-structured-output.md"
EXAMPLES_BEFORE_THE_MOVE = 13
"""The README held this many examples before its reference moved to `docs/`."""
RULES = [
    Rule(**rule)
    for rule in json.loads((ROOT / "notebooks/local_server_rules.json").read_text())
]
_FENCE = re.compile(r"^( *)```python\n(.*?)^\1```", re.MULTILINE | re.DOTALL)
_NEEDS = re.compile(r"^# (Needs .+)$", re.MULTILINE)
MAX_REQUESTS = 10

pytestmark = pytest.mark.skipif(LIVE, reason="counts requests to the local server")


def examples(text: str) -> list[str]:
    """The Python code blocks of a Markdown text (indented ones too)."""
    return [textwrap.dedent(match.group(2)) for match in _FENCE.finditer(text)]


MARKDOWN = {
    "README": examples(README.read_text()),
    **{page.relative_to(ROOT).as_posix(): examples(page.read_text()) for page in PAGES},
}
"""The Markdown documents' examples, which run as scripts, by document."""
DOCUMENTS = {
    **MARKDOWN,
    **{f"{name}-with-rules": codes for name, codes in MARKDOWN.items() if codes},
    "docstring": examples(inspect.getdoc(ChatDynaspark) or ""),
}


@dataclass
class Outcome:
    """What running one example did."""

    code: str
    skipped: str | None = None
    error: str | None = None
    requests: int = 0
    values: list[Any] = field(default_factory=list)


def _run(code: str, namespace: dict[str, Any], *, allow_await: bool) -> list[Any]:
    """Run `code` statement by statement; return the values of its expressions."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if allow_await else 0
    values = []
    for statement in ast.parse(code).body:
        is_expression = isinstance(statement, ast.Expr)
        tree: ast.AST = (
            ast.Expression(statement.value)
            if is_expression
            else ast.Module([statement], type_ignores=[])
        )
        compiled = compile(
            tree, "<example>", "eval" if is_expression else "exec", flags
        )
        result = eval(compiled, namespace)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        if is_expression:
            values.append(result)
    return values


def _files(directory: Path) -> None:
    """The images the examples read from the working directory."""
    for name, colour in (("receipt.jpg", "white"), ("cat.jpg", "grey")):
        buffer = io.BytesIO()
        Image.new("RGB", (120, 90), colour).save(buffer, "JPEG")
        (directory / name).write_bytes(buffer.getvalue())


@pytest.fixture(scope="module")
def outcomes(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], list[Outcome]]]:
    """Run a document's examples once per module; later calls reuse the run."""
    directory = tmp_path_factory.mktemp("examples")
    _files(directory)
    runs: dict[str, list[Outcome]] = {}
    with (
        DynasparkTestServer() as plain,
        DynasparkTestServer(rules=RULES) as with_rules,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.chdir(directory)

        def run(document: str) -> list[Outcome]:
            if document not in runs:
                server = with_rules if document.endswith("with-rules") else plain
                patch.setenv("DYNASPARK_BASE_URL", server.url)
                namespace: dict[str, Any] = {"__name__": "__example__"}
                results = []
                for code in DOCUMENTS[document]:
                    outcome = Outcome(code)
                    needs = _NEEDS.search(code)
                    if needs:
                        outcome.skipped = needs.group(1)
                        results.append(outcome)
                        continue
                    before = len(server.requests)
                    try:
                        outcome.values = _run(
                            code, namespace, allow_await=document == "docstring"
                        )
                    except Exception:  # reported by the test of this example
                        outcome.error = traceback.format_exc()
                    outcome.requests = len(server.requests) - before
                    results.append(outcome)
                runs[document] = results
            return runs[document]

        yield run


CASES = [
    pytest.param(document, index, id=f"{document}-{index}")
    for document, codes in DOCUMENTS.items()
    for index in range(len(codes))
]


def test_the_documents_have_examples() -> None:
    assert len(DOCUMENTS["README"]) >= 1
    assert {
        "docs/endpoints.md",
        "docs/images.md",
        TOOLS_PAGE,
        "docs/troubleshooting.md",
    } <= {name for name, codes in MARKDOWN.items() if codes}
    assert sum(map(len, MARKDOWN.values())) >= EXAMPLES_BEFORE_THE_MOVE
    assert len(DOCUMENTS["docstring"]) >= 10


@pytest.mark.parametrize(("document", "index"), CASES)
def test_example_runs_offline_in_few_requests(
    document: str, index: int, outcomes: Callable[[str], list[Outcome]]
) -> None:
    outcome = outcomes(document)[index]
    if outcome.skipped:
        pytest.skip(outcome.skipped)
    assert outcome.error is None, f"{outcome.code}\n{outcome.error}"
    assert outcome.requests < MAX_REQUESTS, outcome.code


@pytest.mark.parametrize("document", sorted(MARKDOWN))
def test_markdown_examples_run_as_a_script(document: str) -> None:
    for code in MARKDOWN[document]:
        compile(code, f"<{document} example>", "exec")  # no top-level await


def _outcome(
    outcomes: Callable[[str], list[Outcome]], document: str, marker: str
) -> Outcome:
    [found] = [o for o in outcomes(document) if marker in o.code]
    assert found.error is None, found.error
    return found


def test_tool_example_calls_the_tool(
    outcomes: Callable[[str], list[Outcome]],
) -> None:
    outcome = _outcome(outcomes, TOOLS_PAGE, "model_with_tools.invoke(")
    [tool_calls] = outcome.values
    assert [(c["name"], c["args"]) for c in tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert outcome.requests == 1


@pytest.mark.parametrize("document", [TOOLS_PAGE, f"{TOOLS_PAGE}-with-rules"])
def test_agent_example_runs_the_tool_and_ends(
    document: str, outcomes: Callable[[str], list[Outcome]]
) -> None:
    outcome = _outcome(outcomes, document, "create_agent(")
    [answer] = outcome.values
    assert "Sunny, 21°C in Paris" in answer
    assert outcome.requests == 2


def test_structured_output_example_fills_the_schema(
    outcomes: Callable[[str], list[Outcome]],
) -> None:
    outcome = _outcome(outcomes, TOOLS_PAGE, "with_structured_output(Movie)")
    movie = outcome.values[0]
    assert type(movie).__name__ == "Movie"
    assert (movie.title, movie.year) == ("Best Picture", 1998)
    assert outcome.requests == 1


def test_docstring_tool_and_structured_examples(
    outcomes: Callable[[str], list[Outcome]],
) -> None:
    tool_outcome = _outcome(outcomes, "docstring", "bind_tools([GetWeather])")
    [tool_calls] = tool_outcome.values
    assert tool_calls[0]["name"] == "GetWeather"
    assert tool_calls[0]["args"] == {"location": "Paris"}
    joke_outcome = _outcome(outcomes, "docstring", "with_structured_output(Joke)")
    [joke] = joke_outcome.values
    assert type(joke).__name__ == "Joke"
    assert joke.setup == joke.punchline == "Tell me a joke about cats"
