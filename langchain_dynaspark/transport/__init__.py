"""HTTP transport to Dynaspark: pooled sessions, retries, timeouts, typed errors.

It knows no endpoint's body nor what a field means: the caller says which field
holds the prompt (`prompt_field`), which values are `secrets`, and what a 404
should advise (`not_found_hint`). One module per job:

- `exchange`: POST a form, GET, GET a stream, download a file.
- `retries`: the one retry loop, its backoff and `Retry-After` waits.
- `backoff`: the back-off every caller of one service shares after a 429:
  a gate for the wait the service asked, and a limit on requests in flight.
- `failures`: typed errors from statuses, timeouts and lost connections,
  scrubbed of credentials, secrets and the prompt.
- `proxies`: the proxy of a URL (from the settings or the environment) and the
  timeouts of a request.
- `pools`: one pooled session per event loop, closed with its loop, never
  reused by a forked child.
- `sync`: the private background loop behind the sync API.
- `settings`: the values the transport is given and hands back.

A test that patches a name patches the module that owns it, not this one.
"""

from langchain_dynaspark.transport.exchange import (
    check_encodable,
    download,
    get,
    post_form,
    stream_get,
)
from langchain_dynaspark.transport.failures import conceal
from langchain_dynaspark.transport.retries import (
    BACKOFF_BASE,
    BACKOFF_MAX,
    MAX_RETRY_AFTER,
)
from langchain_dynaspark.transport.settings import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_BYTES,
    MAX_REDIRECTS,
    USER_AGENT,
    Answer,
    Decoder,
    TransportSettings,
    Upload,
)
from langchain_dynaspark.transport.sync import iterate_sync, run_sync

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_MAX",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_REDIRECTS",
    "MAX_RETRY_AFTER",
    "USER_AGENT",
    "Answer",
    "Decoder",
    "TransportSettings",
    "Upload",
    "check_encodable",
    "conceal",
    "download",
    "get",
    "iterate_sync",
    "post_form",
    "run_sync",
    "stream_get",
]
