"""ChatDynaspark configuration, without any network (sockets are disabled here)."""

from __future__ import annotations

import pickle
import warnings

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


def test_sampling_parameters_warn_on_the_form_and_max_tokens_is_dropped() -> None:
    with pytest.warns(UserWarning, match="ignores max_tokens, temperature"):
        model = ChatDynaspark(endpoint="form", temperature=0.2, max_tokens=10)
    assert model.temperature == 0.2
    assert "max_tokens" not in model.model_dump()


def test_sampling_parameters_are_kept_quietly_on_auto() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = ChatDynaspark(temperature=0.2, seed=3)
    assert (model.endpoint, model.temperature, model.seed) == ("auto", 0.2, 3)


def test_unknown_call_kwargs_fail_before_any_request() -> None:
    with pytest.raises(DynasparkInputError, match="unexpected argument"):
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


def test_sampling_fields_are_attributes_validated_at_construction() -> None:
    model = ChatDynaspark(
        endpoint="api",
        temperature=0,
        top_p=1,
        presence_penalty=-2,
        frequency_penalty=2,
        seed=7,
    )
    assert (model.temperature, model.top_p, model.seed) == (0.0, 1.0, 7)
    for field, value in [
        ("temperature", 3.01),
        ("top_p", 1.5),
        ("presence_penalty", -2.5),
        ("frequency_penalty", 9),
        ("seed", 1.5),
    ]:
        with pytest.raises(ValueError, match=field):
            ChatDynaspark(endpoint="api", **{field: value})


def test_endpoint_is_auto_form_or_api() -> None:
    assert ChatDynaspark().endpoint == "auto"
    assert ChatDynaspark(endpoint="form").endpoint == "form"
    assert ChatDynaspark(endpoint="api").endpoint == "api"
    with pytest.raises(ValueError, match="endpoint"):
        ChatDynaspark(endpoint="rest")


@pytest.mark.parametrize(
    ("typo", "field"),
    [("temprature", "temperature"), ("api_pth", "api_path"), ("time_out", "timeout")],
)
def test_unknown_arguments_name_the_nearest_field(typo: str, field: str) -> None:
    with pytest.raises(ValueError, match=f"`{typo}` \\(did you mean `{field}`\\?\\)"):
        ChatDynaspark(**{typo: 1})


def test_unknown_call_arguments_name_the_nearest_one() -> None:
    with pytest.raises(DynasparkInputError, match="did you mean `temperature`"):
        ChatDynaspark(endpoint="api").invoke("hi", temprature=0.5)


def test_api_key_from_environment_and_never_in_repr(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DYNASPARK_API_KEY", "sk-env-secret")
    model = ChatDynaspark(endpoint="api")
    assert model.api_key is not None
    assert model.api_key.get_secret_value() == "sk-env-secret"
    assert "sk-env-secret" not in repr(model)
    assert "sk-env-secret" not in str(pickle.dumps(model.model_dump_json()))
    monkeypatch.delenv("DYNASPARK_API_KEY")
    assert ChatDynaspark().api_key is None


def test_profile_tells_the_truth_per_endpoint() -> None:
    form = ChatDynaspark().profile
    api = ChatDynaspark(endpoint="api").profile
    assert form is not None
    assert api is not None
    for key in ("image_inputs", "image_url_inputs", "image_tool_message"):
        assert form[key]
        assert not api[key]
    assert api["text_inputs"]
    assert api["tool_calling"]


def test_ls_params_per_endpoint() -> None:
    with pytest.warns(UserWarning, match="ignores temperature"):
        form = ChatDynaspark(endpoint="form", temperature=0.5)
    assert "ls_temperature" not in form._get_ls_params()
    auto = ChatDynaspark(temperature=0.5)
    assert auto._get_ls_params()["ls_temperature"] == 0.5
    api = ChatDynaspark(endpoint="api", temperature=0.5)
    assert api._get_ls_params()["ls_temperature"] == 0.5
    assert api._get_ls_params(temperature=1)["ls_temperature"] == 1.0
    assert api._get_ls_params()["ls_model_name"] == "default"
    chosen = ChatDynaspark(endpoint="api", model="openai-large")
    assert chosen._get_ls_params()["ls_model_name"] == "openai-large"
