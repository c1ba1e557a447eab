"""The docs notebooks run top to bottom, as a new user would run them.

Each notebook is executed in a fresh Jupyter kernel (this interpreter, through a
kernel spec written for the test) with `DYNASPARK_BASE_URL` pointing at a local
server that answers with the notebooks' canned replies
(`notebooks/local_server_rules.json`), exactly as the notebooks' Setup tells a
user to run them offline. An error in any cell fails the test. With
`DYNASPARK_LIVE=1` the notebooks run against the real service instead.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from ipykernel.kernelspec import write_kernel_spec
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from PIL import Image

from langchain_dynaspark import ChatDynaspark
from langchain_dynaspark.testing.server import (
    DynasparkTestServer,
    RecordedRequest,
    Rule,
)
from tests.conftest import LIVE, LIVE_BASE_URL
from tests.notebook_code import notebook_definitions
from tests.server_command import server_command

NOTEBOOKS = Path(__file__).parents[2] / "notebooks"
RULES_FILE = NOTEBOOKS / "local_server_rules.json"
NOTEBOOK_NAMES = ["chat_dynaspark.ipynb", "rag_with_dynaspark.ipynb"]
KERNEL_NAME = "dynaspark-notebooks"
CELL_TIMEOUT = 300 if LIVE else 60
KEEP_OUTPUT = "keep-output"
"""The tag of a cell stored with its output (the picture the notebook shows)."""

local_only = pytest.mark.skipif(LIVE, reason="about the local server")


def _rules() -> list[Rule]:
    return [Rule(**rule) for rule in json.loads(RULES_FILE.read_text())]


@pytest.fixture(scope="module")
def notebook_server() -> Iterator[DynasparkTestServer]:
    # As the notebooks' Setup starts it: events visibly apart, rate-limit headers.
    with DynasparkTestServer(
        rules=_rules(), event_delay=0.05, rate_limit=100
    ) as server:
        yield server


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec for this interpreter, whatever kernels the machine has."""
    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / KERNEL_NAME)
    return KernelSpecManager(kernel_dirs=[str(kernels)])


def _execute(
    name: str, base_url: str, kernel_specs: KernelSpecManager
) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    manager = AsyncKernelManager(
        kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_specs
    )
    client = NotebookClient(
        notebook,
        km=manager,
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    env = {**os.environ, "DYNASPARK_BASE_URL": base_url}
    # nbclient keeps a kernel it did not create running; shut it down here.
    client.execute(cleanup_kc=True, env=env)
    return notebook


def _code_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def _stderr(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        output["text"]
        for cell in _code_cells(notebook)
        for output in cell.outputs
        if output.get("name") == "stderr"
    ]


def _kept(cell: nbformat.NotebookNode) -> bool:
    """Whether a cell is stored with its output: the picture the notebook shows."""
    return KEEP_OUTPUT in cell.metadata.get("tags", [])


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_is_stored_without_outputs(name: str) -> None:
    """Only the cells tagged `keep-output` keep theirs: one picture each."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    cells = _code_cells(notebook)
    assert cells
    for cell in cells:
        assert cell.execution_count is None, cell.source
        if _kept(cell):
            [output] = cell.outputs
            assert output["output_type"] == "execute_result"
            assert set(output["data"]) == {"image/png", "text/plain"}
            assert output["execution_count"] is None
        else:
            assert cell.outputs == [], cell.source


def _pixels(output: nbformat.NotebookNode) -> tuple[tuple[int, int], bytes]:
    data = base64.b64decode(output["data"]["image/png"])
    with Image.open(io.BytesIO(data)) as image:
        return image.size, image.convert("RGB").tobytes()


@local_only
def test_the_stored_picture_is_the_one_the_notebook_shows(
    run_notebook: Callable[[str], Run],
) -> None:
    """The committed output of the image cell is what running it displays."""
    stored = [
        cell
        for cell in _code_cells(nbformat.read(NOTEBOOKS / NOTEBOOK_NAMES[0], 4))
        if _kept(cell)
    ]
    run = run_notebook(NOTEBOOK_NAMES[0])
    shown = {cell.id: cell for cell in _code_cells(run.notebook) if _kept(cell)}

    assert [cell.id for cell in stored] == ["media-image"]
    for cell in stored:
        [output] = shown[cell.id].outputs
        assert _pixels(output) == _pixels(cell.outputs[0])
        assert _pixels(output)[0] == (256, 256)


@dataclass(frozen=True)
class Run:
    """An executed notebook and the requests the local server received."""

    notebook: nbformat.NotebookNode
    requests: list[RecordedRequest]

    @property
    def prompts(self) -> list[str]:
        return [request.seen for request in self.requests]


@pytest.fixture(scope="module")
def run_notebook(
    notebook_server: DynasparkTestServer, kernel_specs: KernelSpecManager
) -> Callable[[str], Run]:
    """Execute a notebook once per module; later calls reuse the run."""
    runs: dict[str, Run] = {}

    def run(name: str) -> Run:
        if name not in runs:
            notebook_server.reset()
            base_url = LIVE_BASE_URL if LIVE else notebook_server.url
            notebook = _execute(name, base_url, kernel_specs)
            runs[name] = Run(notebook, list(notebook_server.requests))
        return runs[name]

    return run


@pytest.mark.parametrize("name", NOTEBOOK_NAMES)
def test_notebook_runs_clean(name: str, run_notebook: Callable[[str], Run]) -> None:
    executed = run_notebook(name).notebook

    cells = _code_cells(executed)
    assert all(cell.execution_count is not None for cell in cells)
    assert _stderr(executed) == []


@local_only
def test_chat_notebook_reaches_every_canned_answer(
    run_notebook: Callable[[str], Run],
) -> None:
    """The tool, agent, structured-output and image cells send what they show.

    A cell can run and still miss its point: an agent that never executed its
    tool returns the model's raw text without an error. Each rule matching some
    prompt proves its question was asked. The tool's result goes back to the
    model twice: once by hand, once by the agent. Images reach the service as
    uploaded image files, several of them labelled in one prompt.
    """
    run = run_notebook("chat_dynaspark.ipynb")

    with_tool_result = [p for p in run.prompts if "Sunny and 21 degrees in Paris" in p]
    assert len(with_tool_result) == 2
    for pattern in (
        "weather in Paris",
        "joke about cats",
        "three primary colours",
    ):
        assert any(re.search(pattern, prompt) for prompt in run.prompts), pattern
    api = [request.fields for request in run.requests if request.method == "GET"]
    assert any(fields.get("stream") == "true" for fields in api)
    assert any(fields.get("system") == "Answer in one sentence." for fields in api)
    assert [fields.get("seed") for fields in api].count("7") == 2
    drawn = [r.fields for r in run.requests if r.path == "/api/generate_image"]
    assert drawn == [
        {
            "user_input": "A lighthouse on a cliff at sunset",
            "model": "flux",
            "width": "256",
            "height": "256",
            "seed": "42",
            "api_key": "TH3_API_KEY",
        }
    ]
    spoken = [fields for fields in api if fields.get("model") == "openai-audio"]
    assert [fields.get("voice") for fields in spoken] == ["nova"]
    uploads = [request.file for request in run.requests if request.file is not None]
    assert len(uploads) == 3
    assert all(upload.content_type.startswith("image/") for upload in uploads)
    assert any("[Image 2]" in prompt for prompt in run.prompts)


def _stdout(notebook: nbformat.NotebookNode) -> str:
    return "".join(
        output["text"]
        for cell in _code_cells(notebook)
        for output in cell.outputs
        if output.get("name") == "stdout"
    )


RAG_FIGURES = re.compile(
    r"(\d+) questions over (\d+) documents: "
    r"(hit@1 (\d+)/\d+ \(\d+%\)), (hit@3 (\d+)/\d+ \(\d+%\))"
)


def test_rag_notebook_retrieval_figures(run_notebook: Callable[[str], Run]) -> None:
    """BM25 finds each question's document in the top 3, and mostly first.

    The figures come from the ranker, not the model, so they hold live too. The
    docs' Notebooks page (`docs/notebooks.md`) states the same figures.
    """
    output = _stdout(run_notebook("rag_with_dynaspark.ipynb").notebook)

    (figures,) = RAG_FIGURES.findall(output)
    questions, documents, hit_at_1, at_1, hit_at_3, at_3 = figures
    assert int(questions) >= 10
    assert int(documents) >= 50
    assert int(at_3) == int(questions)
    assert int(at_1) >= 0.8 * int(questions)
    page = (NOTEBOOKS.parent / "docs" / "notebooks.md").read_text()
    assert hit_at_1 in page
    assert hit_at_3 in page


@local_only
def test_rag_notebook_sends_only_the_retrieved_documents(
    run_notebook: Callable[[str], Run],
) -> None:
    """Each question reaches the model with its top 3 documents, not all 60."""
    run = run_notebook("rag_with_dynaspark.ipynb")
    rag = notebook_definitions(NOTEBOOKS / "rag_with_dynaspark.ipynb")
    retriever = rag.BM25Retriever(documents=rag.docs, k=3)

    asked = {
        "Can I bring my dog?": 2,
        "Do you sell train tickets?": 1,
        "Is the café open late on Thursdays?": 1,
    }
    assert len(run.prompts) == sum(asked.values())
    for question, times in asked.items():
        prompts = [prompt for prompt in run.prompts if question in prompt]
        assert len(prompts) == times, question
        expected = [doc.id for doc in retriever.invoke(question)]
        assert 1 <= len(expected) <= 3
        for prompt in prompts:
            in_prompt = re.findall(r"^\[([\w-]+)\] ", prompt, flags=re.MULTILINE)
            assert in_prompt == expected, question


@local_only
def test_rag_notebook_flags_a_citation_outside_the_retrieved_documents(
    run_notebook: Callable[[str], Run],
) -> None:
    """The canned Thursday answer cites a document it was never shown.

    The check flags that citation, and only that one: the other answers cite
    retrieved documents or none.
    """
    output = _stdout(run_notebook("rag_with_dynaspark.ipynb").notebook)

    warnings = [line for line in output.splitlines() if "WARNING" in line]
    assert warnings == [
        "WARNING: cites documents that were not retrieved for this question: "
        "events-board-games"
    ]
    assert "Retrieved: hours-thursday, history, alcohol" in output


@pytest.fixture
def command_line_server() -> Iterator[str]:
    """The server as the notebooks' Setup starts it: the command and the rules.

    On `--port 0` it binds a free port and announces the address it bound.
    """
    with server_command("--rules", str(RULES_FILE)) as url:
        yield url


@local_only
def test_documented_server_command_serves_the_rules(command_line_server: str) -> None:
    model = ChatDynaspark(base_url=command_line_server, max_retries=0)

    answer = model.invoke("Do you sell train tickets?").text

    assert answer == next(
        rule.reply for rule in _rules() if rule.pattern == "train tickets"
    )
    assert model.invoke("Hello").text == "Echo: Hello"
