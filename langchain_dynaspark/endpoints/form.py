"""The Dynaspark web form: one prompt (and at most one image) in, one reply out.

`POST {base_url}/generate_response` with the form fields `user_input` and
`ai_model`, and a `file` when the conversation holds images; the answer is
`{"response": "<text>"}`. The form has no sampling parameters, no token usage
and no streaming.
"""

from __future__ import annotations

from langchain_dynaspark.images import ImageLimits, prepare_upload
from langchain_dynaspark.prompt import Prompt
from langchain_dynaspark.reply import Reply, reply_text
from langchain_dynaspark.transport import TransportSettings, post_form

__all__ = ["DEFAULT_PATH", "NOT_FOUND_HINT", "request"]

DEFAULT_PATH = "/generate_response"
NOT_FOUND_HINT = (
    "The form path may have moved: set `path=` (or `base_url=`) to where the "
    "service answers now. For text-only work, the documented API is another "
    "way in: `ChatDynaspark(endpoint='api')`."
)


async def request(
    settings: TransportSettings, prompt: Prompt, model: str, limits: ImageLimits
) -> Reply:
    """Post the prompt (and its images, composed into one upload); return the reply.

    Raises:
        DynasparkError: A typed subclass for each failure; see `errors`.
    """
    upload = (
        await prepare_upload(prompt.images, limits=limits, settings=settings)
        if prompt.images
        else None
    )
    body = await post_form(
        settings, {"user_input": prompt.text, "ai_model": model}, upload
    )
    return Reply(reply_text(body, prompt=prompt.text), done=True)
