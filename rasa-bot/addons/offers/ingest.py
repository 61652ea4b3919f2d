"""PostHog events in, autoplay-sdk ``SlimAction``s out.

Accepts what posthog-js really sends (``{"api_key", "batch": [...], "sent_at"}`` as gzip
bytes under ``text/plain``, as a base64 ``data=`` form field, or as JSON) and the plain
PostHog event shapes that server-side senders and webhook destinations post. Nothing here
knows about HTTP frameworks: callers hand in bytes and get events or an ``IngestError``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
import reprlib
import sys
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple
from urllib.parse import parse_qs

import ujson
from autoplay_sdk.core.models import SlimAction

from addons.errors import ProactiveError
from addons.urls import canonicalize_url

if TYPE_CHECKING:  # the stores' protocols name this module's types
    from addons.stores.protocols import ClockSkewStore

# The copilot's own reports ("proactive offer shown"…), which the app also captures with
# posthog-js for the team's PostHog: about the copilot, not the user's work.
OWN_EVENTS_PREFIX = "proactive "
# Events that say nothing about what the user is doing.
NOISE_EVENTS = frozenset(
    {
        "$pageleave",
        "$identify",
        "$set",
        "$create_alias",
        "$groupidentify",
        "$feature_flag_called",
        "$web_vitals",
        "$opt_in",
        "$snapshot",
        "$performance_event",
    }
)

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = b"\xef\xbb\xbf"
_EARLIEST_TS = 946684800.0  # 2000-01-01: anything before is a unit or parsing mistake
_MAX_FUTURE_S = 86400.0
_MAX_LABEL = 200
_MAX_FIRST_NAME = 40
_MAX_URL = 2048
_CHAIN_TEXT = re.compile(r'(?:^|[:"])text="((?:[^"\\]|\\.)*)"')
_NAME_ATTRS = ("aria-label", "title", "name")  # an element's own name, in the order a person sees it
_CONTAINER_ATTRS = ("aria-label", "title")  # a dialog's or section's name (its `name` is an id)
_CONTAINER_TAGS = frozenset({"dialog", "form", "section", "fieldset"})
_ROLE_CONTROL = re.compile(r'attr__role="(?:button|link|menuitem|tab)"')
_ROLE_CONTAINER = re.compile(r'attr__role="(?:dialog|alertdialog|region|group|form)"')
_MAX_CHAIN = 8192  # chains are cached per string; a longer one is read in part
_CHAIN_ATTR = {a: re.compile(f'attr__{a}="((?:[^"\\\\]|\\\\.)*)"') for a in ("aria-label", "title", "name")}
_ISO_FRACTION = re.compile(r"(?<=\d\d:\d\d:\d\d)\.(\d+)")
_VERBS = {"click": "clicked", "submit": "submitted", "change": "changed", "rageclick": "rage-clicked"}


class IngestError(ProactiveError, ValueError):
    """A capture body or an event that cannot be accepted; the message says what is wrong."""


class PayloadTooLarge(IngestError):
    """The body, once decompressed, is over the configured limit."""

    status = 413


# CaptureBatch, TrackedAction and NormalisedBatch, made for every request, are NamedTuples
# rather than frozen dataclasses: as immutable, built in half the time (a frozen dataclass
# sets each field through object.__setattr__), a measurable share of ingest (BENCHMARKS.md).


class CaptureBatch(NamedTuple):
    """Events decoded from one request body, with the envelope fields PostHog sends."""

    events: Tuple[Any, ...]
    sent_at: Optional[float] = None
    api_key: Optional[str] = None


class TrackedAction(NamedTuple):
    """One user action, keyed by who did it and in which PostHog session."""

    user_id: str
    session_id: str
    action: SlimAction
    event_id: Optional[str] = None


@dataclass(frozen=True)
class RejectedEvent:
    index: int
    reason: str


@dataclass(frozen=True)
class PersonName:
    """A first name from PostHog person properties (``identify(id, {first_name: ...})``)."""

    user_id: str
    first_name: str


class NormalisedBatch(NamedTuple):
    actions: Tuple[TrackedAction, ...]
    skipped: int
    rejected: Tuple[RejectedEvent, ...]
    people: Tuple[PersonName, ...] = ()


def decode_capture_body(
    body: bytes, *, content_type: str = "", max_bytes: int = 1_048_576
) -> CaptureBatch:
    """Decode a capture request body in any of the encodings posthog-js and PostHog use."""
    if not body:
        raise IngestError("empty body: expected PostHog event JSON")
    data = body
    is_form = content_type.startswith("application/x-www-form-urlencoded")
    # Browsers and curl label plain JSON as a form too; only a real form has fields.
    if data.startswith(b"data=") or (is_form and not data.lstrip().startswith((b"{", b"["))):
        data = _form_data_field(data)
    if data.startswith(_GZIP_MAGIC):
        data = _gunzip(data, max_bytes)
    elif len(data) > max_bytes:
        raise PayloadTooLarge(f"body is {len(data)} bytes; the limit is {max_bytes}")
    try:
        payload = loads_json(data)
    except ValueError as e:
        raise IngestError(f"body is not JSON, gzip JSON or a base64 'data' form field: {e}") from None
    return parse_capture_payload(payload)


def check_size(body: bytes, max_bytes: int) -> None:
    """Refuse a body over the limit before any work is spent on it."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"body is {len(body)} bytes; the limit is {max_bytes}")


def json_object(body: bytes, *, max_bytes: int) -> Dict[str, Any]:
    """A request body that must be one JSON object (the routes other than capture)."""
    check_size(body, max_bytes)
    try:
        value = loads_json(body)
    except ValueError:
        raise IngestError("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise IngestError(f"body must be a JSON object, got {type(value).__name__}")
    return value


def text_field(body: Mapping[str, Any], key: str, *, limit: int) -> str:
    """A required, non-blank string field of at most ``limit`` characters."""
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise IngestError(f"'{key}' must be a non-empty string")
    if len(value) > limit:
        raise IngestError(f"'{key}' is longer than {limit} characters")
    return value.strip()


def loads_json(data: bytes) -> Any:
    """Parse JSON; any malformed input raises ``ValueError``.

    ujson (installed with Sanic) rather than the stdlib: it parses an event in a third of the
    time, and it stops at a nesting depth limit where the stdlib's decoder recurses into a
    RecursionError (a 500) on a body of a few thousand ``[``.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]  # some server-side senders write one; the stdlib allowed it
    try:
        return ujson.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except SystemError:
        # ujson 5.13 raises this for a 4-byte UTF-8 sequence beyond U+10FFFF.
        raise ValueError("a string holds bytes that are not UTF-8") from None


def parse_capture_payload(payload: Any) -> CaptureBatch:
    """Accept one event, a list of events, or a ``{"batch": [...]}`` envelope."""
    if isinstance(payload, list):
        return CaptureBatch(events=tuple(payload))
    if not isinstance(payload, dict):
        raise IngestError(f"expected a JSON object or list of events, got {type(payload).__name__}")
    api_key = payload.get("api_key") or payload.get("token")
    api_key = api_key if isinstance(api_key, str) else None
    sent_at = None
    if payload.get("sent_at") is not None:
        try:
            sent_at = parse_timestamp(payload["sent_at"])
        except IngestError:
            sent_at = None  # only used to correct client clock skew; its absence is harmless
    if "batch" in payload:
        batch = payload["batch"]
        if not isinstance(batch, list):
            raise IngestError("'batch' must be a list of events")
        return CaptureBatch(events=tuple(batch), sent_at=sent_at, api_key=api_key)
    if "event" in payload:
        return CaptureBatch(events=(payload,), sent_at=sent_at, api_key=api_key)
    raise IngestError("expected a PostHog event (with 'event'), a list of them, or {'batch': [...]}")


def normalise_batch(batch: CaptureBatch, *, received_at: float, skew: Optional[ClockSkewStore] = None) -> NormalisedBatch:
    """Turn every event of a batch into a ``TrackedAction``; bad events are reported, not fatal."""
    clock_offset = 0.0
    if batch.sent_at is not None:
        clock_offset = received_at - batch.sent_at
        client = _client_key(batch.events)
        if skew is not None and client is not None:
            clock_offset = skew.offset(client, clock_offset, now=received_at)
    actions: List[TrackedAction] = []
    rejected: List[RejectedEvent] = []
    people: List[PersonName] = []
    skipped = 0
    for index, raw in enumerate(batch.events):
        person = person_name(raw)
        if person is not None:
            people.append(person)
        try:
            tracked = normalise_event(raw, received_at=received_at, clock_offset=clock_offset)
        except IngestError as e:
            rejected.append(RejectedEvent(index=index, reason=str(e)))
            continue
        if tracked is None:
            skipped += 1
        else:
            actions.append(tracked)
    return NormalisedBatch(actions=tuple(actions), skipped=skipped, rejected=tuple(rejected), people=tuple(people))


def person_name(raw: Any) -> Optional[PersonName]:
    """The first name an event sets on its person, if any (``$identify``/``$set`` carry ``$set``).

    ``first_name`` (or ``firstName``, ``given_name``) wins; else the first word of ``name``.
    Read even from events that are noise as actions, because that is where identify puts it.
    """
    if not isinstance(raw, dict):
        return None
    props = raw.get("properties")
    props = props if isinstance(props, dict) else {}
    person = props.get("$set", raw.get("$set"))
    if not isinstance(person, dict):
        return None
    first = next((person[k] for k in ("first_name", "firstName", "given_name") if isinstance(person.get(k), str)), None)
    if first is None and isinstance(person.get("name"), str):
        first = person["name"].split(" ", 1)[0]
    first = clean_text(first, _MAX_FIRST_NAME + 1)
    if not first or len(first) > _MAX_FIRST_NAME or "@" in first:
        return None  # an email or a paragraph is not a name to greet someone with
    try:
        user_id = require_identifier(raw.get("distinct_id", props.get("distinct_id")), "distinct_id")
    except IngestError:
        return None
    return PersonName(user_id=user_id, first_name=first)


def _client_key(events: Sequence[Any]) -> Optional[str]:
    """The one browser a batch came from (posthog-js's ``$device_id``, else the distinct id);
    None for a batch that mixes clients, such as a server-side sender's."""
    keys = set()
    for raw in events:
        if isinstance(raw, dict):
            props = raw.get("properties")
            props = props if isinstance(props, dict) else {}
            key = next(
                (k for k in (props.get("$device_id"), raw.get("distinct_id"), props.get("distinct_id")) if isinstance(k, str) and k),
                None,
            )
            keys.add(key[:200] if key else None)
    return keys.pop() if len(keys) == 1 else None


def normalise_event(
    raw: Any, *, received_at: float, clock_offset: float = 0.0
) -> Optional[TrackedAction]:
    """Map one PostHog event to a ``TrackedAction``; ``None`` for noise events."""
    if not isinstance(raw, dict):
        raise IngestError(f"event must be an object, got {type(raw).__name__}")
    name = raw.get("event")
    if not isinstance(name, str) or not name:
        raise IngestError("event has no 'event' name")
    if name in NOISE_EVENTS or name.startswith(("$$", OWN_EVENTS_PREFIX)):
        return None
    props = raw.get("properties") or {}
    if not isinstance(props, dict):
        raise IngestError("'properties' must be an object")
    user_id = require_identifier(raw.get("distinct_id", props.get("distinct_id")), "distinct_id")
    session_id = require_identifier(props.get("$session_id"), "properties.$session_id")
    ts = _event_time(raw, props, received_at=received_at, clock_offset=clock_offset)

    url = clean_text(props.get("$current_url"), _MAX_URL)
    if name == "$pageview":
        page = clean_text(props.get("title"), _MAX_LABEL) or clean_text(props.get("$pathname"), _MAX_URL) or url
        kind, title, description = "pageview", f"Page Load: {page}", f"User landed on {page}"
    elif name in ("$autocapture", "$rageclick"):
        kind = "rageclick" if name == "$rageclick" else (clean_text(props.get("$event_type"), 20) or "click").lower()
        label, context = element_label(props), element_context(props)
        where = f" in '{context}'" if context else ""  # "clicked 'Save changes' in 'Edit P-1044'"
        title, description = label, f"User {verb_of(kind)} '{label}'{where}"
    else:
        label = clean_text(props.get("label") or props.get("title"), _MAX_LABEL) or name
        kind, title, description = name.lower()[:60], label, f"User triggered '{name}': {label}"

    # Interned: a session repeats its URLs, labels and ids in every action; one copy each.
    action = SlimAction(
        title=sys.intern(title),
        description=sys.intern(description),
        canonical_url=sys.intern(canonicalize_url(url)),
        type=sys.intern(kind),
        timestamp_start=ts,
        timestamp_end=ts,
        raw_url=sys.intern(url),
        session_id=sys.intern(session_id),
        user_id=sys.intern(user_id),
        email=_email(props),
    )
    event_id = raw.get("uuid")
    return TrackedAction(
        user_id=user_id,
        session_id=session_id,
        action=action,
        event_id=event_id if isinstance(event_id, str) and event_id else None,
    )


def parse_timestamp(value: Any) -> float:
    """Epoch seconds from ISO-8601 (``Z`` allowed), epoch seconds/millis as number or string."""
    if isinstance(value, bool):
        raise IngestError(f"timestamp {_shown(value)} is not a time")
    if isinstance(value, (int, float)):
        ts = _as_float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            ts = float(text)
        except ValueError:
            try:
                parsed = _from_iso(text)
            except ValueError:
                raise IngestError(f"timestamp {_shown(value)} is neither ISO-8601 nor epoch seconds") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            ts = parsed.timestamp()
    else:
        raise IngestError(f"timestamp {_shown(value)} is neither ISO-8601 nor epoch seconds")
    if not math.isfinite(ts):
        raise IngestError(f"timestamp {_shown(value)} is not finite")
    if ts > 1e11:  # epoch milliseconds
        ts /= 1000.0
    if ts < _EARLIEST_TS:
        raise IngestError(f"timestamp {_shown(value)} is before 2000-01-01")
    return ts


def _from_iso(text: str) -> datetime:
    """Python 3.10's fromisoformat rejects a trailing "Z" and fractions other than 3 or 6
    digits; posthog-js sends 3, so the fraction is mended only when it has to be (the
    regular expression was most of the parse)."""
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return datetime.fromisoformat(_ISO_FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1))


def verb_of(kind: str) -> str:
    """How an activity line says what was done with an element: "clicked", "submitted"…"""
    return _VERBS.get(kind, kind)


def element_label(props: Mapping[str, Any]) -> str:
    """What a person would call the element: its text, as PostHog titles it; else its
    accessible name (aria-label, title, name), or that of the button or link it sits in; for
    a form, the name of the form or of the dialog it sits in. Never a selector, and never the
    bare tag when the event holds anything better."""
    text = clean_text(props.get("$el_text"), _MAX_LABEL)
    if text:
        return text
    elements = props.get("$elements")
    if isinstance(elements, list) and elements and isinstance(elements[0], dict):
        text = clean_text(elements[0].get("$el_text") or elements[0].get("attr__aria-label"), _MAX_LABEL)
        if text:
            return text
    chain = props.get("$elements_chain")
    if isinstance(chain, str) and chain:
        return chain_names(chain[:_MAX_CHAIN])[0] or "element"
    return "element"


def element_context(props: Mapping[str, Any]) -> str:
    """The named dialog, form or section the element sits in ("" when none is named)."""
    chain = props.get("$elements_chain")
    return chain_names(chain[:_MAX_CHAIN])[1] if isinstance(chain, str) and chain else ""


# A session's clicks repeat a few chains (every "Save changes" has the same one): each is
# read once. Elements are split at ";" (a ";" inside an attribute value only costs a match).
@functools.lru_cache(maxsize=4096)
def chain_names(chain: str) -> Tuple[str, str]:
    """(label, context) of an ``$elements_chain``, clicked element first."""
    elements = chain.split(";")
    first = elements[0]
    label = _chain_text(first) or _chain_name(first, _NAME_ATTRS)
    if not label:
        holder = next((e for e in elements[1:] if _chain_tag(e) in ("button", "a") or _ROLE_CONTROL.search(e)), None)
        if holder is not None:
            label = _chain_text(holder) or _chain_name(holder, _NAME_ATTRS)
    containers = (e for e in elements if _is_container(e))
    context = next((name for name in (_chain_name(e, _CONTAINER_ATTRS) for e in containers) if name), "")
    if not label:  # a form and the like: called what the dialog or section around it is called
        label, context = context, ""
    if not label:
        label = next((t for t in (_chain_text(e) for e in elements[1:]) if t), "") or _chain_tag(first)
    return label, ("" if context == label else context)


def _chain_tag(element: str) -> str:
    return element.split(":", 1)[0].split(".", 1)[0].strip()


def _chain_text(element: str) -> str:
    match = _CHAIN_TEXT.search(element)
    return clean_text(match.group(1).replace('\\"', '"'), _MAX_LABEL) if match else ""


def _chain_name(element: str, attrs: Tuple[str, ...]) -> str:
    for attr in attrs:
        match = _CHAIN_ATTR[attr].search(element)
        if match and match.group(1).strip():
            return clean_text(match.group(1).replace('\\"', '"'), _MAX_LABEL)
    return ""


def _is_container(element: str) -> bool:
    return _chain_tag(element) in _CONTAINER_TAGS or _ROLE_CONTAINER.search(element) is not None


def _event_time(raw: Mapping[str, Any], props: Mapping[str, Any], *, received_at: float, clock_offset: float) -> float:
    if raw.get("timestamp") is not None:
        ts = parse_timestamp(raw["timestamp"]) + clock_offset
    elif props.get("$time") is not None:
        ts = parse_timestamp(props["$time"]) + clock_offset
    elif raw.get("offset") is not None:
        offset = raw["offset"]
        offset_ms = _as_float(offset) if isinstance(offset, (int, float)) and not isinstance(offset, bool) else math.nan
        if not math.isfinite(offset_ms) or offset_ms < 0:
            raise IngestError(f"offset {_shown(offset)} must be a finite, non-negative number of milliseconds")
        ts = received_at - offset_ms / 1000.0
    else:
        ts = received_at  # PostHog's rule for events sent without a time
    if ts > received_at + _MAX_FUTURE_S:
        raise IngestError(f"timestamp {_shown(raw.get('timestamp', props.get('$time')))} is more than a day in the future")
    if ts < _EARLIEST_TS:
        # Only reachable through a nonsensical sent_at: the correction moved it before 2000.
        raise IngestError(f"timestamp {_shown(raw.get('timestamp', props.get('$time')))} is before 2000 after the sent_at clock correction")
    return ts


def _as_float(number: float) -> float:
    """An int or float as a float; an int too large for one (JSON allows any) is infinite."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


def _shown(value: Any) -> str:
    """A rejected value as an error message quotes it: short, and shallow however deep it was
    (a plain repr of a value nested a thousand deep raises RecursionError)."""
    return _REPR.repr(value)


def require_identifier(value: Any, field: str) -> str:
    """A user, session or other id: a non-empty string (or integer) of at most 200 characters."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise IngestError(f"event has no {field}" if value is None else f"{field} must be a string")
    text = str(value).strip()
    if not text:
        raise IngestError(f"event has an empty {field}")
    if len(text) > 200:
        raise IngestError(f"{field} is longer than 200 characters")
    try:
        text.encode("utf-8")  # a lone surrogate (JSON allows "\ud800") is no id anyone has
    except UnicodeEncodeError:
        raise IngestError(f"{field} is not valid Unicode text") from None
    return text


def _email(props: Mapping[str, Any]) -> Optional[str]:
    person = props.get("$set")
    email = props.get("email") or (person.get("email") if isinstance(person, dict) else None)
    return clean_text(email, 320) or None


def clean_text(value: Any, limit: int) -> str:
    """A string field as labels keep it: whitespace folded, at most ``limit`` characters."""
    if not isinstance(value, str):
        return ""
    return " ".join(value.split())[:limit]


def _form_data_field(body: bytes) -> bytes:
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise IngestError("form body is not valid application/x-www-form-urlencoded") from None
    values: Sequence[str] = fields.get("data", [])
    if not values:
        raise IngestError("form body has no 'data' field")
    encoded = values[0].strip()
    try:
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_" if "-" in encoded or "_" in encoded else None, validate=True)
    except (binascii.Error, ValueError):
        raise IngestError("form field 'data' is not valid base64") from None


def _gunzip(data: bytes, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decompressor.decompress(data, max_bytes + 1)
    except zlib.error as e:
        raise IngestError(f"body starts like gzip but does not decompress: {e}") from None
    if len(out) > max_bytes or decompressor.unconsumed_tail:
        raise PayloadTooLarge(f"gzip body expands past the {max_bytes}-byte limit")
    if not decompressor.eof:
        raise IngestError("gzip body is truncated")
    return out
