"""Pages: the path of an action's URL, and its canonical form.

One place for URL handling, because triggers, tours and prompts all ask "which page was
this on?" and must agree. Both functions are cached per URL string: a session repeats its
few URLs in every event, and parsing each once is a tenth of ingest's cost (BENCHMARKS.md).
"""

from __future__ import annotations

import functools
import re
from urllib.parse import urlsplit, urlunsplit

from autoplay_sdk.core.models import SlimAction

_ID_SEGMENT = re.compile(
    r"^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}|[A-Za-z]{1,5}[-_]\d+)$",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=2048)
def canonicalize_url(url: str) -> str:
    """Drop query and fragment and collapse id-like path segments to ``:id``."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    segments = [":id" if _ID_SEGMENT.match(s) else s for s in parts.path.split("/")]
    return urlunsplit((parts.scheme, parts.netloc, "/".join(segments), "", ""))


@functools.lru_cache(maxsize=2048)
def url_path(url: str) -> str:
    """The path of a URL ("" if it does not parse): page patterns never match host or query."""
    try:
        return urlsplit(url).path
    except ValueError:
        return ""


def action_path(action: SlimAction) -> str:
    """The path of the page an action happened on."""
    return url_path(action.raw_url or action.canonical_url or "")
