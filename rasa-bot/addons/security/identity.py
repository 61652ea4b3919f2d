"""Verified user identities, like Intercom's user hash.

The host app's server knows who is signed in; it computes ``HMAC-SHA256(secret, user_id)``
and hands it to the browser with the user id. Every route that reads or acts for a user
(toast stream, chat injection, tours, diagnostics, the chat socket) checks it, so knowing
someone's user id is not enough to read their toasts or write into their chat.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Mapping, Optional

from addons.config import ConfigError, IdentityConfig
from addons.errors import ProactiveError

SECRET_ENV = "PROACTIVE_IDENTITY_SECRET"
HEADER = "X-Proactive-User-Hash"  # fetch/XHR callers
QUERY = "user_hash"  # EventSource and socket.io, which cannot set headers


class IdentityError(ProactiveError, PermissionError):
    """A request for a user that did not prove it is that user."""

    status = 403


class Unauthenticated(IdentityError):
    """No signature was presented (401)."""

    status = 401


class Forbidden(IdentityError):
    """A signature for someone else, or a resource that belongs to another user (403)."""

    status = 403


def presented_bytes(value: str) -> bytes:
    """A presented signature or secret as bytes, whatever bytes the request carried."""
    return value.encode("utf-8", "surrogateescape")


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


class IdentityVerifier:
    def __init__(self, secret: Optional[str], *, required: bool = True) -> None:
        if required and not secret:
            raise ConfigError(
                f"identity.required is true but no secret is set: set {SECRET_ENV} "
                "(or identity.secret in proactive.yml for a demo)"
            )
        self._secret = secret
        self.required = required

    @classmethod
    def from_config(cls, config: IdentityConfig, environ: Mapping[str, str]) -> "IdentityVerifier":
        return cls(environ.get(SECRET_ENV) or config.secret, required=config.required)

    def verify(self, user_id: str, presented: Optional[str]) -> None:
        """Raise unless ``presented`` is ``user_id``'s signature (or checks are off)."""
        if not self.required and (not presented or not self._secret):
            return
        if not presented:
            raise Unauthenticated(
                f"no identity signature for user {user_id!r}: send the {HEADER} header "
                f"(or the {QUERY} query parameter) the app's server computed"
            )
        assert self._secret is not None
        # As bytes: a header or query value may hold any byte (Sanic keeps them as surrogates),
        # and compare_digest refuses non-ASCII str.
        if not hmac.compare_digest(user_hash(self._secret, user_id).encode(), presented_bytes(presented.strip().lower())):
            raise Forbidden(f"the identity signature is not user {user_id!r}'s")

    def verified(self, user_id: Optional[str], presented: Optional[str]) -> Optional[str]:
        """``user_id`` if it checks out, else None (for callers that degrade, not refuse)."""
        if not user_id:
            return None
        try:
            self.verify(user_id, presented)
        except IdentityError:
            return None
        return user_id
