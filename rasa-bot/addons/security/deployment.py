"""Is this `rasa run` safe to expose? What the demo's settings would give away in production.

Also Rasa's own HTTP API: the copilot needs none of it (injection runs in-process), and open,
``POST /conversations/<id>/trigger_intent`` writes into anyone's chat and ``GET …/tracker``
reads it, with no credentials.

At start-up the channel logs one WARNING per finding. With ``PROACTIVE_PRODUCTION=1`` in the
environment the findings refuse the start instead, so a deploy cannot go out with the demo's
secret, its debug route or its project key by accident.
"""

from __future__ import annotations

from typing import List, Mapping, Sequence

from addons.config import ConfigError, ProactiveConfig
from addons.security.identity import SECRET_ENV

PRODUCTION_ENV = "PROACTIVE_PRODUCTION"
DEMO_SECRET = "demo-identity-secret-change-me"  # rasa-bot/proactive.yml and app/copilot/lib/config.ts
DEMO_PROJECT_KEY = "phc_proactive_demo"
MIN_SECRET_BYTES = 32
_API_AUTH_FLAGS = ("--auth-token", "-t", "--jwt-secret")


class UnsafeForProduction(ConfigError):
    """``PROACTIVE_PRODUCTION`` is on and the settings are the demo's (or as weak)."""


def unsafe_settings(config: ProactiveConfig, environ: Mapping[str, str], argv: Sequence[str] = ()) -> List[str]:
    """Each setting that would be unsafe in production, said so the fix is clear. ``argv`` is
    `rasa run`'s command line: Rasa keeps its API token only inside its route decorators."""
    findings = []
    if "--enable-api" in argv and not any(flag in argv for flag in _API_AUTH_FLAGS):
        findings.append("Rasa's HTTP API is on (--enable-api) without --auth-token or --jwt-secret: anyone can "
                        "write into any chat; the copilot does not need the API, drop the flag or protect it")
    secret = environ.get(SECRET_ENV) or config.identity.secret or ""
    if config.identity.required and secret == DEMO_SECRET:
        findings.append(f"the identity secret is the demo's: set {SECRET_ENV} to a long random string")
    elif config.identity.required and len(secret.encode()) < MIN_SECRET_BYTES:
        findings.append(f"the identity secret is shorter than {MIN_SECRET_BYTES} bytes: set {SECRET_ENV} to a longer one")
    if not config.identity.required:
        findings.append("identity.required is false: anyone can read any user's toasts and write into their chat")
    if config.identity.debug_route:
        findings.append("identity.debug_route is on: GET /webhooks/proactive/debug/<user> shows a user's activity")
    if DEMO_PROJECT_KEY in config.ingest.project_keys:
        findings.append(f"ingest.project_keys has the demo's key {DEMO_PROJECT_KEY!r}: list your PostHog project key")
    return findings


def production_mode(environ: Mapping[str, str]) -> bool:
    return environ.get(PRODUCTION_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def check_deployment(config: ProactiveConfig, environ: Mapping[str, str], argv: Sequence[str] = ()) -> List[str]:
    """The findings to warn about; in production mode, ``UnsafeForProduction`` instead."""
    findings = unsafe_settings(config, environ, argv)
    if findings and production_mode(environ):
        raise UnsafeForProduction(
            f"{PRODUCTION_ENV} is on, and these settings are not safe for production:\n  " + "\n  ".join(findings)
        )
    return findings
