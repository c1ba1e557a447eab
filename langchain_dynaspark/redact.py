"""Credentials out of what can be observed: reprs, traces, cache keys. Pure.

A `base_url` or `proxy` may carry `user:password@`, and so may a redirect's
`Location`. `repr`, the invocation parameters that callbacks and tracers
receive, the cache key and a `DynasparkRedirectError` show such a URL with its
user information replaced by `***`. (Transport error messages show only the
host, and strip the known passwords from the text of aiohttp's errors.)
"""

from __future__ import annotations

import re

__all__ = ["scrub_url"]

_USERINFO = re.compile(r"(?<=://)[^/?#\s]*@")


def scrub_url(text: str) -> str:
    """`text` with the `user:password@` of every URL in it replaced by `***@`.

    Example:
        ```python
        scrub_url("http://me:secret@proxy:3128")  # 'http://***@proxy:3128'
        ```
    """
    if "@" not in text:
        return text  # no user information without an `@`: the common case, fast
    return _USERINFO.sub("***@", text)
