"""ChatDynaspark configuration, without any network (sockets are disabled here)."""

from __future__ import annotations

import pickle

import pytest

from langchain_dynaspark import ChatDynaspark, DynasparkInputError
from langchain_dynaspark.chat_models import DEFAULT_BASE_URL


def test_defaults() -> None:
    model = ChatDynaspark()
    assert model.model == "gemini-2.0-flash"
    assert model.base_url == DEFAULT_BASE_URL
    assert model.path == "/generate_response"
    assert (model.timeout, model.connect_timeout, model.max_retries) == (120.0, 15.0, 2)


def test_model_name_alias_and_any_model_string_is_kept() -> None:
    assert ChatDynaspark(model_name="gemini-2.0-flash").model == "gemini-2.0-flash"
    assert ChatDynaspark(model="some-future-model").model == "some-future-model"


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DYNASPARK_BASE_URL", "http://127.0.0.1:9999")
    assert ChatDynaspark().base_url == "http://127.0.0.1:9999"
    assert ChatDynaspark(base_url="http://x.test").base_url == "http://x.test"


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError, match="max_retries"):
        ChatDynaspark(max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        ChatDynaspark(timeout=0)


def test_sampling_parameters_warn_and_are_dropped() -> None:
    with pytest.warns(UserWarning, match="ignores max_tokens, temperature"):
        model = ChatDynaspark(temperature=0.2, max_tokens=10)
    assert "temperature" not in model.model_dump()


def test_unknown_call_kwargs_fail_before_any_request() -> None:
    with pytest.raises(DynasparkInputError, match="unexpected keyword argument"):
        ChatDynaspark().invoke("hi", frobnicate=True)


def test_non_string_model_override_fails_before_any_request() -> None:
    with pytest.raises(DynasparkInputError, match="model name string"):
        ChatDynaspark().invoke("hi", model=3)


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_model_name_fails_before_any_request(blank: str) -> None:
    with pytest.raises(ValueError, match="`model` is empty: give a model name"):
        ChatDynaspark(model=blank)
    with pytest.raises(DynasparkInputError, match="`model` is empty"):
        ChatDynaspark().invoke("hi", model=blank)


def test_ls_params_report_provider_and_model_in_use() -> None:
    model = ChatDynaspark(model="gemini-2.0-flash", stop=["END"])
    params = model._get_ls_params()
    assert params["ls_provider"] == "dynaspark"
    assert params["ls_model_name"] == "gemini-2.0-flash"
    assert params["ls_model_type"] == "chat"
    assert params["ls_stop"] == ["END"]
    assert model._get_ls_params(model="gemini-2.0-flash-lite")["ls_model_name"] == (
        "gemini-2.0-flash-lite"
    )


def test_profile_states_text_in_and_out_and_no_audio_video_pdf() -> None:
    profile = ChatDynaspark().profile
    assert profile is not None
    assert profile["text_inputs"]
    assert profile["text_outputs"]
    assert not profile["audio_inputs"]
    assert not profile["video_inputs"]
    assert not profile["pdf_inputs"]


def test_pickles_without_session_loop_or_thread() -> None:
    model = ChatDynaspark(model="gemini-2.0-flash", max_retries=5, stop=["x"])
    clone = pickle.loads(pickle.dumps(model))
    assert clone.model_dump() == model.model_dump()
