"""The files surface: `GET /files/<name>` serves the server's `files`.

For image-URL tests that must not leave the machine.
"""

from __future__ import annotations

from aiohttp import web

from langchain_dynaspark.testing.surface import ServiceState

__all__ = ["FilesSurface"]


class FilesSurface:
    """Each of `state.files` at `GET /files/<name>`, with its content type."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        """`GET /files/{name}`."""
        return [web.get("/files/{name}", self.file)]

    async def file(self, request: web.Request) -> web.Response:
        """The file named in the path; `404` if there is none."""
        name = request.match_info["name"]
        if name not in self.state.files:
            raise web.HTTPNotFound
        data, content_type = self.state.files[name]
        return web.Response(body=data, content_type=content_type)
