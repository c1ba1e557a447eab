"""What LangChain reads off a model: names, token estimates, repr, trace params.

No network: sockets are disabled here.
"""

from __future__ import annotations

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, trim_messages
from langchain_core.messages.utils import count_tokens_approximately
from langchain_core.tools import tool
from pydantic import SecretStr

from langchain_dynaspark import ChatDynaspark, DynasparkInputError
from langchain_dynaspark.chat_models import DEFAULT_MODEL, KNOWN_MODELS
from langchain_dynaspark.redact import scrub_url

SECRET = "s3cr3t-pa55"
BASE_URL = f"http://alice:{SECRET}@service.test:8080"
PROXY = f"http://bob:{SECRET}@proxy.test:3128"


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return city


def test_default_model_is_the_newest_known_and_names_pass_through() -> None:
    assert DEFAULT_MODEL == "gemini-2.0-flash"
    assert DEFAULT_MODEL in KNOWN_MODELS
    assert ChatDynaspark().model == "gemini-2.0-flash"
    assert ChatDynaspark(model="gemini-1.5-flash").model == "gemini-1.5-flash"


def test_model_name_is_readable_as_an_attribute() -> None:
    assert ChatDynaspark().model_name == "gemini-2.0-flash"
    assert ChatDynaspark(model="x-1").model_name == "x-1"
    assert ChatDynaspark(model_name="x-2").model_name == "x-2"


def test_token_counts_are_offline_estimates() -> None:
    model = ChatDynaspark()
    assert model.get_num_tokens("") == 0
    assert model.get_num_tokens("hello") == 2
    assert model.get_num_tokens("a" * 400) == 100
    messages = [HumanMessage("What is the weather in Paris?"), AIMessage("Sunny.")]
    assert model.get_num_tokens_from_messages(messages) == (
        count_tokens_approximately(messages)
    )
    with_tools = model.get_num_tokens_from_messages(messages, tools=[get_weather])
    assert with_tools > model.get_num_tokens_from_messages(messages)


def test_custom_token_ids_still_win() -> None:
    model = ChatDynaspark(custom_get_token_ids=lambda text: list(range(len(text))))
    assert model.get_num_tokens("hello") == 5


def test_trim_messages_counts_with_the_model() -> None:
    messages = [HumanMessage("a" * 400), HumanMessage("short")]
    kept = trim_messages(
        messages, max_tokens=20, token_counter=ChatDynaspark(), strategy="last"
    )
    assert kept == [HumanMessage("short")]


@pytest.mark.parametrize(
    "prompt", ["", "   ", [("system", ""), ("human", "")], [HumanMessage([])]]
)
def test_empty_prompts_are_refused_before_sending(prompt: object) -> None:
    # Sockets are disabled: a request would fail with another error.
    with pytest.raises(DynasparkInputError, match="every message is empty"):
        ChatDynaspark(max_retries=0).invoke(prompt)  # type: ignore[arg-type]


def test_scrub_url_removes_user_information_only() -> None:
    assert scrub_url(BASE_URL) == "http://***@service.test:8080"
    assert scrub_url("http://a:p@ss@h/x?u=v@w") == "http://***@h/x?u=v@w"
    assert scrub_url("http://service.test/path") == "http://service.test/path"
    assert scrub_url("gemini-2.0-flash") == "gemini-2.0-flash"


def test_identifying_params_cover_every_setting() -> None:
    model = ChatDynaspark(
        stop=["END"],
        format_instructions={"auto": "Maybe call a tool."},
        max_image_side=512,
        max_image_bytes=100_000,
        strip_image_metadata=False,
    )
    params = model._identifying_params
    own = set(type(model).model_fields) - set(BaseChatModel.model_fields)
    assert set(params) == own - {"stop", "api_key"} | {"stop_sequences"}
    assert params["stop_sequences"] == ["END"]
    assert params["format_instructions"] == {"auto": "Maybe call a tool."}
    assert params["max_image_side"] == 512
    assert params["max_image_bytes"] == 100_000
    assert params["strip_image_metadata"] is False
    # The call's own `stop` does not overwrite the model's stop sequences.
    invocation = model._get_invocation_params(stop=None)
    assert invocation["stop_sequences"] == ["END"]
    assert invocation["stop"] is None


class WithSecrets(ChatDynaspark):
    """Fields other changes may add: a setting, a key, a secret under any name."""

    private: bool = False
    api_key: str | None = None
    token: SecretStr = SecretStr("tok3n")


def test_new_fields_are_covered_and_secrets_left_out() -> None:
    model = WithSecrets(api_key=SECRET, private=True)
    params = model._identifying_params
    assert params["private"] is True
    assert "api_key" not in params
    assert "token" not in params
    assert SECRET not in model._get_llm_string()
    assert "tok3n" not in model._get_llm_string()


def test_credentials_stay_out_of_everything_observable() -> None:
    model = ChatDynaspark(base_url=BASE_URL, proxy=PROXY, stop=["x"])
    observed = [
        repr(model),
        str(model),
        str(model._identifying_params),
        str(model._get_invocation_params(stop=["y"], model="m")),
        str(model._get_ls_params_with_defaults(stop=["y"])),
        model._get_llm_string(stop=["y"]),
        str(model._serialized),
    ]
    for text in observed:
        assert SECRET not in text
        assert "alice" not in text
        assert "bob" not in text
    assert "http://***@service.test:8080" in repr(model)
    assert model._identifying_params["proxy"] == "http://***@proxy.test:3128"
    # The model itself still holds the URLs it was given.
    assert model.base_url == BASE_URL
