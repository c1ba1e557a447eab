"""A prepared call -> its surface -> the reply -> an `AIMessage` or chunks.

The one-way run of a call once `calls.prepare` has built its request: the
surface sends it (through `transport`) and reads the answer into a `Reply`;
stop sequences cut it; the emulation reads tool calls out of it; `messages`
makes the LangChain message. Nothing here returns into the model class.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

from langchain_core.outputs import ChatGenerationChunk

from langchain_dynaspark.calls import PreparedCall, reroute
from langchain_dynaspark.emulation.format_repair import Attempt, repair_prompt
from langchain_dynaspark.endpoints.gone import first_contact, is_gone
from langchain_dynaspark.errors import DynasparkError
from langchain_dynaspark.messages import final_chunk, reply_message, text_chunk
from langchain_dynaspark.reply import Reply, StopScanner, apply_stop

__all__ = ["attempt", "chunks"]

_READ_IN_THREAD = 32_768
"""Replies longer than this (in characters) are parsed in a worker thread, so a
long reply does not hold up the event loop (about 2 ms per 32 KB of code)."""


async def attempt(call: PreparedCall) -> Attempt:
    """One request: the surface's request and reply -> `AIMessage`.

    The attempt carries the repair prompt to send when the reply missed the
    form the call required.
    """
    call, reply = await _sent(call)
    text, cut = apply_stop(reply.text, call.stop)
    emulation = call.emulation
    parsed, problem = (
        await asyncio.to_thread(emulation.read, text)
        if len(text) > _READ_IN_THREAD
        else emulation.read(text)
    )
    message = reply_message(
        call.endpoint.name, call.request.model, reply, parsed, cut=cut
    )
    return Attempt(
        message,
        text,
        repair_prompt(call.texts["repair"], problem, emulation.instructions(call.texts))
        if problem
        else None,
    )


async def chunks(call: PreparedCall) -> AsyncGenerator[ChatGenerationChunk, None]:
    """The surface's events as chunks, each as soon as it arrives.

    Text that could still begin a stop sequence is held back until it
    cannot; once a stop sequence matches, the rest of the stream is read and
    its text dropped, so the usage and metadata that end a reply still count,
    as in `attempt`. The last chunk (with the text of the event that ended the
    reply, if any) carries the usage, metadata and content blocks (an image,
    audio), so a reply that came in one piece is one chunk.
    """
    scanner = StopScanner(call.stop)
    model = usage = finish_reason = limits = source_url = None
    blocks: tuple[dict[str, Any], ...] = ()
    tail = ""
    call, pieces, first = await _opened(call)
    async with contextlib.aclosing(pieces):
        piece: Reply | None = first
        while piece is not None:
            model = piece.model or model
            usage = piece.usage or usage
            finish_reason = piece.finish_reason or finish_reason
            limits = piece.rate_limit or limits
            blocks, source_url = piece.blocks or blocks, piece.source_url or source_url
            if scanner.matched:
                # Cut: read on, the text dropped, for the usage and metadata
                # that end the reply (the stream's byte cap bounds the rest).
                if piece.done:
                    break
            else:
                text = scanner.feed(piece.text)
                if scanner.matched or piece.done:
                    tail = text
                    if piece.done:
                        break
                elif text:
                    yield text_chunk(text)
            piece = await anext(pieces, None)
    tail += scanner.flush()
    last = Reply(
        tail,
        model=model,
        usage=usage,
        rate_limit=limits,
        blocks=blocks,
        source_url=source_url,
    )
    finish = "stop_sequence" if scanner.matched else finish_reason or "stop"
    yield final_chunk(call.endpoint.name, call.request.model, last, finish)


async def _sent(call: PreparedCall) -> tuple[PreparedCall, Reply]:
    """The call sent, on another surface if its own answered as gone."""
    while True:
        try:
            if not call.router.rerouting:
                return call, await call.endpoint.send(call.request)
            async with first_contact(call.endpoint.transport.url):
                return call, await call.endpoint.send(call.request)
        except DynasparkError as error:
            if not (call.router.rerouting and is_gone(error)):
                raise
            call = reroute(call, error)


async def _opened(
    call: PreparedCall,
) -> tuple[PreparedCall, AsyncGenerator[Reply, None], Reply | None]:
    """The call's stream and its first piece.

    On another surface if the call's own answered as gone before any piece.
    """
    while True:
        pieces = call.endpoint.events(call.request)
        try:
            if not call.router.rerouting:
                return call, pieces, await anext(pieces, None)
            async with first_contact(call.endpoint.transport.url):
                return call, pieces, await anext(pieces, None)
        except DynasparkError as error:
            await pieces.aclose()
            if not (call.router.rerouting and is_gone(error)):
                raise
            call = reroute(call, error)
