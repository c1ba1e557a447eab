"""The web form surface: `POST {path}` with `user_input`, `ai_model`, a `file`.

The form comes URL-encoded, or as `multipart/form-data` when a `file` is
attached; the answer is `200 {"response": "<text>"}`.
"""

from __future__ import annotations

from aiohttp import web

from langchain_dynaspark.testing.recording import UploadedFile
from langchain_dynaspark.testing.surface import (
    ServiceState,
    gone_page,
    missing_input,
    raw_response,
    reply_headers,
    scripted_fault,
)

__all__ = ["DEFAULT_PATH", "FormSurface"]

DEFAULT_PATH = "/generate_response"


class FormSurface:
    """The form endpoint at `path`."""

    def __init__(self, state: ServiceState, path: str = DEFAULT_PATH) -> None:
        self.state = state
        self.path = path

    def routes(self) -> list[web.RouteDef]:
        """`POST {path}`."""
        return [web.post(self.path, self.generate)]

    async def generate(self, request: web.Request) -> web.StreamResponse:
        """Answer one form request: scripted, or by the rules and the default."""
        self.state.count_connection(request)
        form = await request.post()
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        upload = form.get("file")
        file = (
            UploadedFile(upload.filename, upload.content_type, upload.file.read())
            if isinstance(upload, web.FileField)
            else None
        )
        self.state.record(request, fields, file)
        if "form" in self.state.gone:
            return gone_page()
        reply = self.state.next_reply()
        dropped = await scripted_fault(request, reply)
        if dropped is not None:
            return dropped
        if reply is not None and (reply.text is None or reply.status != 200):
            return raw_response(reply)
        if "user_input" not in fields or not fields["user_input"]:
            return missing_input()
        text = (
            reply.text
            if reply is not None
            else self.state.answer(fields["user_input"], file)
        )
        return web.json_response({"response": text}, headers=reply_headers(reply))
