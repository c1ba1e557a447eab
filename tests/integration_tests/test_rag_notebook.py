"""The RAG notebook's retriever, citation check and chain, on inputs it doesn't show.

The notebook runs end to end in test_notebooks.py, with the canned answers. Here
its `definitions` cells run in this interpreter (tests/notebook_code.py), so the
same code meets other corpora and whatever a model might answer: ids that don't
exist, documents it wasn't shown, duplicates, no citations, prose instead of JSON.
"""

from __future__ import annotations

import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from pydantic import ValidationError

from langchain_dynaspark import ChatDynaspark
from langchain_dynaspark.testing.server import DynasparkTestServer
from tests.notebook_code import notebook_definitions

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "rag_with_dynaspark.ipynb"
DOG = "Can I bring my dog?"


@pytest.fixture(scope="module")
def rag() -> ModuleType:
    return notebook_definitions(NOTEBOOK)


@pytest.fixture
def chain(rag: ModuleType, server: DynasparkTestServer):
    model = ChatDynaspark(base_url=server.url, max_retries=0)
    return rag.build_chain(rag.BM25Retriever(documents=rag.docs, k=3), model)


def _retrieved(rag: ModuleType, question: str) -> list[str]:
    return [doc.id for doc in rag.BM25Retriever(documents=rag.docs).invoke(question)]


def _answer(answer: str, citations: object) -> str:
    return json.dumps({"answer": answer, "citations": citations})


def _documents_in(prompt: str) -> list[str]:
    return re.findall(r"^\[([\w-]+)\] ", prompt, flags=re.MULTILINE)


def test_corpus_is_large_with_unique_ids(rag: ModuleType) -> None:
    ids = [doc.id for doc in rag.docs]
    assert len(ids) >= 50
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[a-z0-9-]+", doc_id) for doc_id in ids)
    assert all(doc.page_content and "|" not in doc.page_content for doc in rag.docs)
    assert {expected for _, expected in rag.EVALUATION} <= set(ids)


# The retriever


@pytest.fixture
def small(rag: ModuleType):
    docs = [
        Document(id="tables", page_content="Tables can be booked at the counter."),
        Document(id="dogs", page_content="Dogs are welcome on the terrace."),
        Document(id="wifi", page_content="Guest Wi-Fi is free for customers."),
        Document(id="terrace", page_content="The terrace has heaters; dogs too."),
    ]
    return rag.BM25Retriever(documents=docs, k=2)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Where do I make a booking?", {"tables"}),  # booking ~ booked
        ("DOG", {"dogs", "terrace"}),  # lower-cased, dog ~ dogs
        ("Is the wifi free?", {"wifi"}),
    ],
)
def test_retriever_matches_normalised_words(
    small, query: str, expected: set[str]
) -> None:
    assert {doc.id for doc in small.invoke(query)} == expected


def test_retriever_ranks_by_score_and_keeps_at_most_k(small) -> None:
    docs = small.invoke("dogs on the terrace")

    assert len(docs) == 2
    scores = [doc.metadata["score"] for doc in docs]
    assert scores == sorted(scores, reverse=True)
    assert all(score > 0 for score in scores)
    assert small.documents[1].metadata == {}  # scores go on copies


@pytest.mark.parametrize("query", ["", "what is it", "train tickets", "?!"])
def test_retriever_returns_nothing_without_a_shared_word(small, query: str) -> None:
    assert small.invoke(query) == []


def test_retriever_with_k_above_the_corpus_size(rag: ModuleType) -> None:
    docs = [Document(id="a", page_content="apples"), Document(id="b", page_content="a")]

    found = rag.BM25Retriever(documents=docs, k=10).invoke("apple")

    assert [doc.id for doc in found] == ["a"]


@pytest.mark.parametrize(
    "fields", [{"documents": []}, {"documents": [Document("x")], "k": 0}]
)
def test_retriever_refuses_bad_settings(rag: ModuleType, fields: dict) -> None:
    with pytest.raises(ValidationError):
        rag.BM25Retriever(**fields)


def test_retriever_gives_the_same_results_from_many_threads(rag: ModuleType) -> None:
    retriever = rag.BM25Retriever(documents=rag.docs, k=3)
    questions = [question for question, _ in rag.EVALUATION] * 8
    alone = [[doc.id for doc in retriever.invoke(q)] for q in questions]

    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(retriever.invoke, questions))

    assert [[doc.id for doc in docs] for docs in together] == alone
    assert [[doc.id for doc in docs] for docs in retriever.batch(questions)] == alone


async def test_retriever_async_matches_sync(rag: ModuleType) -> None:
    retriever = rag.BM25Retriever(documents=rag.docs, k=3)

    found = await retriever.ainvoke(DOG)

    assert [doc.id for doc in found] == _retrieved(rag, DOG)


# The citation check, through the whole chain


def test_chain_sends_only_the_retrieved_documents(
    rag: ModuleType, chain, server: DynasparkTestServer
) -> None:
    retrieved = _retrieved(rag, DOG)
    server.script(_answer("Yes, on the terrace.", [retrieved[0]]))

    checked = chain.invoke(DOG)

    (request,) = server.requests
    assert _documents_in(request.seen) == retrieved
    assert checked.retrieved == retrieved
    assert checked.cited == [retrieved[0]]
    assert checked.not_retrieved == []
    assert checked.citations_ok
    assert "WARNING" not in str(checked)


@pytest.mark.parametrize(
    ("citations", "cited", "not_retrieved"),
    [
        # a document that exists but was not retrieved for this question
        (["pets-inside", "wifi"], ["pets-inside", "wifi"], ["wifi"]),
        # an id that names no document at all
        (["pets-terrace", "pets-2019"], ["pets-terrace", "pets-2019"], ["pets-2019"]),
        # duplicates, brackets and blanks count once or not at all
        (
            ["pets-inside", " [pets-inside] ", "", "[]", "nope", "nope"],
            ["pets-inside", "nope"],
            ["nope"],
        ),
        # case matters: ids are compared exactly
        (["PETS-INSIDE"], ["PETS-INSIDE"], ["PETS-INSIDE"]),
    ],
)
def test_chain_flags_citations_outside_the_retrieved_documents(
    chain,
    server: DynasparkTestServer,
    citations: list[str],
    cited: list[str],
    not_retrieved: list[str],
) -> None:
    server.script(_answer("Yes.", citations))

    checked = chain.invoke(DOG)

    assert checked.answer == "Yes."
    assert checked.cited == cited
    assert checked.not_retrieved == not_retrieved
    assert not checked.citations_ok
    assert checked.format_error is None
    assert (
        "WARNING: cites documents that were not retrieved for this question: "
        + ", ".join(not_retrieved)
    ) in str(checked)


def test_chain_accepts_an_answer_that_cites_nothing(
    chain, server: DynasparkTestServer
) -> None:
    server.script(_answer("I don't know.", []))

    checked = chain.invoke("Do you sell train tickets?")

    assert checked.cited == []
    assert checked.citations_ok
    assert "Cited: nothing" in str(checked)


def test_chain_flags_any_citation_when_nothing_was_retrieved(
    chain, server: DynasparkTestServer
) -> None:
    server.script(_answer("Yes, decaf is available.", ["coffee"]))

    checked = chain.invoke("Do you have decaf?")

    assert "(no document matches the question)" in server.requests[0].seen
    assert checked.retrieved == []
    assert checked.not_retrieved == ["coffee"]
    assert not checked.citations_ok


@pytest.mark.parametrize(
    "reply",
    [
        "Yes, dogs are welcome on the terrace. [pets-terrace]",
        _answer("Yes.", [1, 2]),
        _answer("Yes.", "pets-terrace"),
        json.dumps({"answer": "Yes."}),
    ],
    ids=["prose", "numbers", "string", "no-citations-key"],
)
def test_chain_reports_a_reply_that_does_not_fit_the_schema(
    chain, server: DynasparkTestServer, reply: str
) -> None:
    # Twice: the model is asked once more (format_retries) and answers the same.
    server.script(reply, reply)

    checked = chain.invoke(DOG)

    assert checked.format_error is not None
    assert checked.format_error.startswith("the reply is not a CitedAnswer")
    assert checked.answer == reply
    assert checked.cited == []
    assert not checked.citations_ok
    assert "WARNING: the reply is not a CitedAnswer" in str(checked)


async def test_chain_async_and_batch_check_each_answer(
    rag: ModuleType, chain, server: DynasparkTestServer
) -> None:
    server.script(_answer("Yes.", ["wifi"]), _answer("Yes.", ["wifi"]))

    checked = await chain.ainvoke(DOG)
    (batched,) = await chain.abatch([DOG])

    assert checked == batched
    assert checked.not_retrieved == ["wifi"]


# The vector-store and hybrid code the notebook shows without running


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.DOTALL)


def test_vector_store_and_hybrid_snippets_run(
    rag: ModuleType,
    server: DynasparkTestServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The offline-only sections run with a fake embeddings model in place."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (section,) = [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        and "## Switching to a vector store" in cell.source
    ]
    vector, hybrid = _python_blocks(section)
    openai = ModuleType("langchain_openai")
    openai.OpenAIEmbeddings = lambda model: DeterministicFakeEmbedding(size=64)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "langchain_openai", openai)
    namespace = dict(vars(rag))
    namespace["model"] = ChatDynaspark(base_url=server.url, max_retries=0)

    exec(compile(vector, "vector", "exec", dont_inherit=True), namespace)
    vector_ids = [doc.id for doc in namespace["vector_retriever"].invoke(DOG)]
    exec(compile(hybrid, "hybrid", "exec", dont_inherit=True), namespace)
    fused = [doc.id for doc in namespace["hybrid_retriever"].invoke(DOG)]
    server.script(_answer("Yes.", fused[:1]))
    checked = namespace["rag_chain"].invoke(DOG)

    assert len(set(vector_ids)) == 3
    assert len(set(fused)) == 3
    assert set(fused) <= {doc.id for doc in rag.docs}
    assert checked.retrieved == fused
    assert checked.citations_ok

    def ranking(*ids: str) -> list[Document]:
        return [Document(id=doc_id, page_content=doc_id) for doc_id in ids]

    fuse = namespace["reciprocal_rank_fusion"]
    rankings = {"bm25": ranking("a", "b", "c"), "vector": ranking("c", "d")}
    assert [doc.id for doc in fuse(rankings)] == ["c", "a", "b"]
    assert [doc.id for doc in fuse(rankings, k=4)] == ["c", "a", "b", "d"]
    assert fuse({"bm25": [], "vector": []}) == []
