"""Who may read the insights (``/metrics``, ``/insights/funnel``): anyone on the network by
default, like ``/health`` (aggregate counts per trigger, nothing about a user), or only a
holder of the bearer token when one is set, as Prometheus's ``authorization`` sends it."""

from __future__ import annotations

import hmac
from typing import Dict, Mapping, Optional

from addons.config import InsightsConfig
from addons.security.identity import Unauthenticated

TOKEN_ENV = "PROACTIVE_INSIGHTS_TOKEN"


class MissingReaderToken(Unauthenticated):
    """The insights are token-protected and the request had no valid bearer token."""

    def headers(self) -> Dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="proactive insights"'}


class InsightsReaders:
    def __init__(self, token: Optional[str]) -> None:
        self._token = token.encode("utf-8") if token else None

    @classmethod
    def from_config(cls, config: InsightsConfig, environ: Mapping[str, str]) -> "InsightsReaders":
        return cls(environ.get(TOKEN_ENV) or config.token)

    @property
    def protected(self) -> bool:
        return self._token is not None

    def check(self, authorization: Optional[str]) -> None:
        if self._token is None:
            return
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode("utf-8", "replace"), self._token):
            raise MissingReaderToken(f"the insights need 'Authorization: Bearer <token>' ({TOKEN_ENV})")
