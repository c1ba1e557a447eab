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

from langchain_core.outputs import ChatGenerationChunk

from langchain_dynaspark.calls import PreparedCall
from langchain_dynaspark.emulation.format_repair import Attempt, repair_prompt
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
    reply = await call.endpoint.send(call.request)
    text, cut = apply_stop(reply.text, call.stop)
    emulation = call.emulation
    parsed, problem = (
        await asyncio.to_thread(emulation.read, text)
        if len(text) > _READ_IN_THREAD
        else emulation.read(text)
    )
    message = reply_message(call.request.model, reply, parsed, cut=cut)
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
    cannot; once a stop sequence matches, events are read only until one
    brings more text, so the usage and metadata that end a reply still count,
    as in `attempt`. The last chunk (with the text of the event that ended the
    reply, if any) carries the usage and metadata, so a reply that came in one
    piece is one chunk.
    """
    scanner = StopScanner(call.stop)
    model = usage = finish_reason = limits = None
    tail = ""
    pieces = call.endpoint.events(call.request)
    async with contextlib.aclosing(pieces):
        async for piece in pieces:
            model = piece.model or model
            usage = piece.usage or usage
            finish_reason = piece.finish_reason or finish_reason
            limits = piece.rate_limit or limits
            if scanner.matched:
                # Cut: read on only for what the service says after the text.
                if piece.text or piece.done:
                    break
                continue
            text = scanner.feed(piece.text)
            if scanner.matched or piece.done:
                tail = text
                if piece.done:
                    break
            elif text:
                yield text_chunk(text)
    tail += scanner.flush()
    last = Reply(tail, model=model, usage=usage, rate_limit=limits)
    finish = "stop_sequence" if scanner.matched else finish_reason or "stop"
    yield final_chunk(call.request.model, last, finish)
