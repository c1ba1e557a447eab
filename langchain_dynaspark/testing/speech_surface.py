"""Spoken replies: what the API surface answers for `model=openai-audio`.

The reply text (scripted, by a rule, or the default) is "spoken" as MP3 bytes:
an ID3 tag, then silent MPEG-1 Layer III frames, more for a longer text, so the
body plays in any MP3 player. An unknown `voice` is answered `400`, as an
error of the text API.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

__all__ = ["SPEECH_MODEL", "VOICES", "mp3", "spoken"]

SPEECH_MODEL = "openai-audio"
VOICES = frozenset({"alloy", "echo", "fable", "onyx", "nova", "shimmer"})
_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00"
"""An empty ID3v2.4 tag."""
_FRAME = b"\xff\xfb\x90\xc4" + bytes(413)
"""One silent frame: MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono, 26 ms."""
_MAX_FRAMES = 400


def spoken(
    query: Mapping[str, str], text: str, headers: Mapping[str, str]
) -> web.Response:
    """The answer to a spoken-reply request whose reply is `text`."""
    voice = query.get("voice", "alloy")
    if voice not in VOICES:
        error = {"error": f"Unknown voice: {voice}"}
        return web.json_response(error, status=400, headers=headers)
    return web.Response(body=mp3(text), content_type="audio/mpeg", headers=headers)


def mp3(text: str) -> bytes:
    """MP3 bytes as long as reading `text` aloud might take (silence)."""
    frames = min(_MAX_FRAMES, 8 + 12 * len(text.split()))
    return _ID3 + _FRAME * frames
