"""What start-up says about settings that are not safe for production, and the switch that
makes it refuse them."""

from dataclasses import replace

import pytest

from addons.config import IdentityConfig, IngestLimits
from addons.security.deployment import DEMO_SECRET, UnsafeForProduction, check_deployment, unsafe_settings

STRONG = "s" * 40


def test_the_demo_config_is_flagged_for_its_secret_debug_route_and_project_key(config):
    findings = unsafe_settings(config, {})
    assert [f.split(":")[0] for f in findings] == [
        "the identity secret is the demo's", "identity.debug_route is on", "ingest.project_keys has the demo's key 'phc_proactive_demo'",
    ]


def test_a_production_config_has_no_findings(config):
    production = replace(config, identity=IdentityConfig(secret=None, debug_route=False),
                         ingest=IngestLimits(project_keys=("phc_real",)))
    assert unsafe_settings(production, {"PROACTIVE_IDENTITY_SECRET": STRONG}) == []


@pytest.mark.parametrize("secret,finding", [
    (DEMO_SECRET, "the identity secret is the demo's"),
    ("short", "the identity secret is shorter than 32 bytes"),
])
def test_a_weak_secret_from_the_environment_is_flagged_too(config, secret, finding):
    production = replace(config, identity=IdentityConfig(secret=None, debug_route=False),
                         ingest=IngestLimits(project_keys=("phc_real",)))
    assert [f.split(":")[0] for f in unsafe_settings(production, {"PROACTIVE_IDENTITY_SECRET": secret})] == [finding]


def test_identity_checks_off_is_flagged(config):
    production = replace(config, identity=IdentityConfig(secret=STRONG, required=False, debug_route=False),
                         ingest=IngestLimits(project_keys=("phc_real",)))
    assert [f.split(":")[0] for f in unsafe_settings(production, {})] == ["identity.required is false"]


def test_the_production_switch_turns_the_findings_into_a_refusal(config):
    assert len(check_deployment(config, {})) == 3  # warnings only
    with pytest.raises(UnsafeForProduction) as refused:
        check_deployment(config, {"PROACTIVE_PRODUCTION": "1"})
    assert "PROACTIVE_PRODUCTION is on" in str(refused.value) and "debug_route" in str(refused.value)


@pytest.mark.parametrize("argv,flagged", [
    (["rasa", "run", "--enable-api", "--cors", "*"], True),
    (["rasa", "run", "--enable-api", "--auth-token", "t0ken"], False),
    (["rasa", "run", "--enable-api", "-t", "t0ken"], False),
    (["rasa", "run", "--enable-api", "--jwt-secret", "s"], False),
    (["rasa", "run", "--cors", "*"], False),
])
def test_rasa_s_http_api_without_auth_is_flagged(config, argv, flagged):
    findings = unsafe_settings(config, {}, argv)
    assert any(f.startswith("Rasa's HTTP API is on (--enable-api)") for f in findings) == flagged

