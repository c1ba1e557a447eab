"""Proxies and timeouts: the route and the time limits of a request.

Proxies: `proxy`, else `HTTP(S)_PROXY`/`NO_PROXY` from the environment, looked
up once per URL and again only when one of those variables changes. (Letting
aiohttp read the environment, `trust_env`, costs two worker-thread round trips
and a `~/.netrc` read per request: about as much CPU as all the rest of a call.)
"""

from __future__ import annotations

import asyncio
import os
from functools import lru_cache

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

__all__ = ["Proxy", "client_timeout", "proxy_for"]

_PROXY_ENVIRONMENT = (
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "no_proxy",
    "NO_PROXY",
    "REQUEST_METHOD",
)
"""The variables that decide the proxy for an http(s) URL (`urllib.request`)."""
_MAX_ENV_PROXIES = 64
_env_proxies: dict[tuple[str | None, ...], tuple[URL | None, aiohttp.BasicAuth | None]]
_env_proxies = {}


Proxy = tuple[str | URL | None, aiohttp.BasicAuth | None]
"""A proxy and its credentials, as `proxy_for` finds them."""


async def proxy_for(url: str, proxy: str | None) -> Proxy:
    """The proxy for `url`, and its credentials: `proxy`, else the environment's.

    The environment's answer (`HTTP(S)_PROXY`, `NO_PROXY`, proxy credentials
    from `~/.netrc`) is the one aiohttp's `trust_env` gives, looked up on a
    worker thread once and kept until one of the variables changes.
    """
    if proxy is not None:
        return proxy, None
    key = (url, *map(os.environ.get, _PROXY_ENVIRONMENT))
    found = _env_proxies.get(key)
    if found is None:
        found = await asyncio.to_thread(_env_proxy, url)
        if len(_env_proxies) >= _MAX_ENV_PROXIES:
            _env_proxies.clear()
        _env_proxies[key] = found
    return found


def _env_proxy(url: str) -> tuple[URL | None, aiohttp.BasicAuth | None]:
    try:
        return get_env_proxy_for_url(URL(url))
    except (LookupError, ValueError):
        return None, None


@lru_cache(maxsize=32)
def client_timeout(total: float | None, connect: float | None) -> aiohttp.ClientTimeout:
    """`total` bounds the whole attempt, `connect` the opening of a connection."""
    return aiohttp.ClientTimeout(total=total, sock_connect=connect)
