"""Who may push events from outside the browser: each source proves itself with its secret.

* PostHog's HTTP webhook destination: a shared secret in a header its template sets
  (``X-Proactive-Secret`` unless configured otherwise);
* autoplay-sdk's PostHog destination: the same, in ``x-posthog-secret``, as its template sends;
* Autoplay's connector push: ``X-Connector-Signature: sha256=HMAC-SHA256(secret, raw body)``.

A source is on only when it has a secret (its environment variable wins over the file); a
wrong or missing secret is a 401, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

from addons.config import EventSources, SourceSecret
from addons.errors import ProactiveError
from addons.security.identity import Unauthenticated, presented_bytes

POSTHOG_WEBHOOK = "posthog_webhook"
AUTOPLAY_DESTINATION = "autoplay_destination"
AUTOPLAY_CONNECTOR = "autoplay_connector"
SECRET_ENV = {
    POSTHOG_WEBHOOK: "PROACTIVE_POSTHOG_WEBHOOK_SECRET",
    AUTOPLAY_DESTINATION: "PROACTIVE_AUTOPLAY_DESTINATION_SECRET",
    AUTOPLAY_CONNECTOR: "PROACTIVE_AUTOPLAY_CONNECTOR_SECRET",
}


class BadSourceSecret(Unauthenticated):
    """A push without its source's secret or signature, or with a wrong one (401)."""


class SourceNotConfigured(ProactiveError):
    """A push to a source that has no secret configured, so it is off (404)."""

    status = 404


@dataclass(frozen=True)
class SourceAuth:
    name: str
    secret: str
    header: str
    signed: bool  # an HMAC of the body, not the secret itself

    def check(self, headers: Mapping[str, str], body: bytes) -> None:
        presented = headers.get(self.header)
        if not presented:
            raise BadSourceSecret(f"no {self.header} header: the {self.name} source needs it")
        if self.signed:
            expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected.encode(), presented_bytes(presented.strip().lower())):
                raise BadSourceSecret(f"the {self.header} signature does not match the body")
        elif not hmac.compare_digest(self.secret.encode(), presented_bytes(presented.strip())):
            raise BadSourceSecret(f"the {self.header} secret is not the {self.name} source's")


def source_auths(sources: EventSources, environ: Mapping[str, str]) -> Dict[str, SourceAuth]:
    """The sources that are on, by name."""
    configured = {
        POSTHOG_WEBHOOK: sources.posthog_webhook,
        AUTOPLAY_DESTINATION: sources.autoplay_destination,
        AUTOPLAY_CONNECTOR: sources.autoplay_connector,
    }
    auths = {}
    for name, source in configured.items():
        secret = _secret(name, source, environ)
        if secret:
            auths[name] = SourceAuth(name, secret, source.header, signed=name == AUTOPLAY_CONNECTOR)
    return auths


def _secret(name: str, source: SourceSecret, environ: Mapping[str, str]) -> Optional[str]:
    return environ.get(SECRET_ENV[name]) or source.secret
