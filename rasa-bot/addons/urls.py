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


# -- page patterns ----------------------------------------------------------------------
# A plain pattern ("/projects") matches any path that contains it, as it always has. A glob
# matches the whole path: "*" one segment, "**" any number of them, ":name" a path parameter.

_GLOB_MARKS = ("*", ":")
_BAD_PATH_CHARS = re.compile(r"[\s?#]")


def page_pattern_problem(pattern: str) -> str:
    """What is wrong with a page pattern ("" when nothing is)."""
    if not pattern.startswith("/"):
        return f"page pattern {pattern[:80]!r} must start with '/'"
    if _BAD_PATH_CHARS.search(pattern):
        return f"page pattern {pattern[:80]!r} has a character a URL path cannot hold (space, '?' or '#')"
    if "//" in pattern:
        return f"page pattern {pattern[:80]!r} has an empty segment ('//')"
    for segment in pattern.split("/")[1:]:
        if "*" in segment and segment not in ("*", "**"):
            return f"page pattern {pattern[:80]!r}: '*' and '**' stand for whole segments, not {segment!r}"
        if segment.startswith(":") and not re.fullmatch(r":[A-Za-z_][A-Za-z0-9_]*", segment):
            return f"page pattern {pattern[:80]!r}: {segment!r} is not a path parameter like ':id'"
    return ""


@functools.lru_cache(maxsize=256)
def _page_regex(pattern: str) -> "re.Pattern[str]":
    parts = []
    for segment in pattern.strip("/").split("/"):
        if segment == "**":
            parts.append("(?:/.*)?")  # any number of segments, none included
        elif segment == "*" or segment.startswith(":"):
            parts.append("/[^/]+")
        else:
            parts.append("/" + re.escape(segment))
    return re.compile("".join(parts) + "/?")


def page_matches(pattern: str, path: str) -> bool:
    """Whether a URL path is on the page a pattern names."""
    if not any(mark in pattern for mark in _GLOB_MARKS):
        return pattern in path
    return _page_regex(pattern).fullmatch(path) is not None
