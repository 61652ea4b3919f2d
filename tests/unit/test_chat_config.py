"""The chat and LLM sections of proactive.yml, environment overrides, and first names from PostHog."""

import pytest

from addons.config import ConfigError, LLMConfig, parse_config
from addons.offers.ingest import person_name
from addons.answers.llm import resolve_llm


def minimal(**sections):
    return {"product_id": "p", **sections}


def test_the_shipped_config_has_the_chat_defaults(config):
    assert config.chat.follow_up_gap_s == 0.6
    assert "Bulk edit" in config.chat.ui_vocabulary
    assert config.chat.summary.enabled is False
    assert config.llm.enabled is True and config.llm.api_key is None and config.llm.base_url is None


def test_without_a_key_or_base_url_no_llm_is_configured_and_it_says_why():
    settings = resolve_llm(LLMConfig(), {})
    assert not settings.configured
    assert settings.why_not == "no OPENAI_API_KEY, OPENAI_BASE_URL, llm.api_key or llm.base_url"
    assert settings.describe().startswith("none (")


def test_environment_wins_over_the_file():
    config = LLMConfig(model="file-model", api_key="file-key", base_url="http://file/v1")
    env = {"OPENAI_API_KEY": "env-key", "OPENAI_BASE_URL": "http://env/v1", "OPENAI_MODEL": "env-model"}
    settings = resolve_llm(config, env)
    assert (settings.api_key, settings.base_url, settings.model) == ("env-key", "http://env/v1", "env-model")
    assert settings.configured


def test_a_base_url_alone_is_enough_for_a_local_server():
    assert resolve_llm(LLMConfig(base_url="http://127.0.0.1:11434/v1"), {}).configured


def test_enabled_false_wins_over_a_key_in_the_environment():
    settings = resolve_llm(LLMConfig(enabled=False), {"OPENAI_API_KEY": "sk-test"})
    assert not settings.configured and settings.why_not == "llm.enabled is false"


def test_chat_and_llm_sections_parse():
    config = parse_config(minimal(
        chat={"follow_up_gap_s": 0, "activity_lines": 5, "ui_vocabulary": ["Edit"], "summary": {"enabled": True, "every_actions": 4}},
        llm={"model": "m", "base_url": "http://x/v1", "timeout_s": 1.5, "temperature": 0},
    ))
    assert config.chat.follow_up_gap_s == 0 and config.chat.activity_lines == 5
    assert config.chat.ui_vocabulary == ("Edit",)
    assert config.chat.summary.enabled and config.chat.summary.every_actions == 4
    assert (config.llm.model, config.llm.base_url, config.llm.timeout_s, config.llm.temperature) == ("m", "http://x/v1", 1.5, 0)


@pytest.mark.parametrize("raw,key", [
    ({"llm": {"timeout_s": 0}}, "llm.timeout_s"),
    ({"llm": {"enabled": "yes"}}, "llm.enabled"),
    ({"llm": {"model": 4}}, "llm.model"),
    ({"chat": {"ui_vocabulary": "Edit"}}, "chat.ui_vocabulary"),
    ({"chat": {"follow_up_gap_s": -1}}, "chat.follow_up_gap_s"),
    ({"chat": {"summary": {"every_actions": 0}}}, "chat.summary.every_actions"),
])
def test_bad_chat_or_llm_values_name_the_key(raw, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config(minimal(**raw))


def test_identify_sets_the_first_name(ph):
    event = ph.event("$identify", ts=ph.T0, user="u-7", **{"$set": {"first_name": "Ada", "email": "ada@x.io"}})
    assert person_name(event).first_name == "Ada" and person_name(event).user_id == "u-7"


@pytest.mark.parametrize("person,expected", [
    ({"firstName": "Grace"}, "Grace"),
    ({"name": "Alan Turing"}, "Alan"),
    ({"email": "ada@x.io"}, None),
    ({"name": "ada@x.io"}, None),
    ({"first_name": "x" * 60}, None),
    ({"first_name": 42}, None),
])
def test_first_name_sources(ph, person, expected):
    found = person_name(ph.event("$set", ts=ph.T0, **{"$set": person}))
    assert (found.first_name if found else None) == expected


def test_the_engine_remembers_first_names_from_noise_events(engine, ph):
    events = [ph.event("$identify", ts=ph.T0, user="u-9", **{"$set": {"first_name": "Katherine"}})]
    batch = ph.batch(events, received_at=ph.T0)
    assert batch.actions == () and batch.skipped == 1
    engine.ingest(batch, now=ph.T0)
    assert engine.stores.first_names.get("u-9") == "Katherine"


@pytest.mark.parametrize(
    "sections, key",
    [
        ({"chat": {"activity_lines": 0.5}}, "chat.activity_lines"),
        ({"chat": {"summary": {"max_concurrent": 0}}}, "max_concurrent"),
        ({"llm": {"max_tokens": 100.7}}, "llm.max_tokens"),
        ({"activity": {"max_sessions": True}}, "activity.max_sessions"),
    ],
)
def test_sizes_and_limits_must_be_whole_numbers_of_at_least_one(sections, key):
    with pytest.raises(ConfigError, match=rf"{key}.*expected a whole number of at least 1"):
        parse_config(minimal(**sections))
