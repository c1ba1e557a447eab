"""The admin surface: the server's methods for a server run as a command.

`POST /__admin__/script` (a JSON list of replies: a string, or an object of
`Reply` fields), `GET /__admin__/stats` and `POST /__admin__/reset` do what
`script`, the counters and `reset` do in-process; a malformed script is
answered 400, saying why.
"""

from __future__ import annotations

from aiohttp import web

from langchain_dynaspark.testing.rules import script_from_json
from langchain_dynaspark.testing.surface import ServiceState

__all__ = ["AdminSurface"]


class AdminSurface:
    """Scripting, counters and reset over HTTP, under `/__admin__/`."""

    def __init__(self, state: ServiceState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        """`POST /__admin__/script`, `GET /__admin__/stats`, `POST /__admin__/reset`."""
        return [
            web.post("/__admin__/script", self.script),
            web.get("/__admin__/stats", self.stats),
            web.post("/__admin__/reset", self.reset),
        ]

    async def script(self, request: web.Request) -> web.Response:
        """Queue the replies in the body; how many are queued now."""
        try:
            replies = script_from_json(await request.text())
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        self.state.script(*replies)
        return web.json_response({"queued": len(self.state.queue)})

    async def stats(self, request: web.Request) -> web.Response:
        """Requests and connections so far, and when the last stream began."""
        streams = self.state.streams
        last = streams[-1] if streams else None
        return web.json_response(
            {
                "requests": len(self.state.requests),
                "connections": self.state.connections,
                "first_write_at": last.first_write_at if last else None,
            }
        )

    async def reset(self, request: web.Request) -> web.Response:
        """Forget the script and the records."""
        self.state.reset()
        return web.json_response({"reset": True})
