"""bulk_edit_opportunity from the real proactive.yml, registry isolation, and built-ins selected by id."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from autoplay_sdk.proactive.triggers import ProactiveTriggerRegistry, ProactiveTriggerResult
from autoplay_sdk.proactive.triggers.context_source import build_proactive_context_from_payloads
from autoplay_sdk.proactive.triggers.defaults import DEFAULT_PROACTIVE_QUICK_REPLY_BODY

from addons.stores.memory import InMemoryActivityStore
from addons.config import ConfigError, parse_config
from addons.offers.engine import ProactiveEngine
from addons.offers.evaluation import FullRescan
from addons.offers.triggers import (
    EVAL_NOW,
    BuiltinTrigger,
    IsolatedTrigger,
    RepeatedActionTrigger,
    TriggerRegistry,
    TriggerVerdict,
    build_trigger,
    compile_registry,
    explain_all,
)

T0 = 1779188762.919
PRODUCT = "demo-app"


@pytest.fixture
def bulk_edit(config) -> RepeatedActionTrigger:
    trigger = build_trigger(config.trigger("bulk_edit_opportunity"))
    assert isinstance(trigger, RepeatedActionTrigger)
    return trigger


@pytest.fixture
def explain(config, ph, bulk_edit):
    """Events → activity store → SDK context (as the engine builds it) → the trigger's verdict."""

    def run(events: List[Dict[str, Any]], *, now: float) -> TriggerVerdict:
        store = InMemoryActivityStore(config.activity, product_id=PRODUCT)
        store.add(ph.batch(events, received_at=now).actions, now=now)
        ctx = _context(store, "sess-1", now)
        verdict = bulk_edit.explain(ctx)
        assert (bulk_edit.evaluate(ctx) is not None) == verdict.fired  # evaluate agrees with explain
        return verdict

    return run


def _context(store: InMemoryActivityStore, session_id: str, now: float, extra: Optional[dict] = None):
    return build_proactive_context_from_payloads(
        store.load_payloads(product_id=PRODUCT, session_id=session_id),
        lookback_seconds=None,
        max_actions=None,
        now=now,
        session_id=session_id,
        product_id=PRODUCT,
        context_extra={**(extra or {}), EVAL_NOW: now},
    )


# -- bulk_edit_opportunity --------------------------------------------------------------------


def test_three_saves_in_window_fire(explain, ph, config):
    verdict = explain([ph.pageview("/projects", T0), ph.save(T0 + 10), ph.save(T0 + 40), ph.save(T0 + 70)], now=T0 + 71)
    assert verdict.fired
    assert verdict.result.trigger_id == "bulk_edit_opportunity"
    assert verdict.result.body == config.trigger("bulk_edit_opportunity").body
    assert verdict.result.metadata == {"repeats": 3, "window_s": 120.0, "evidence_until": T0 + 70}
    assert verdict.reason == "3 repeats within 120 s"


def test_two_saves_do_not_fire(explain, ph):
    verdict = explain([ph.pageview("/projects", T0), ph.save(T0 + 10), ph.save(T0 + 20)], now=T0 + 21)
    assert not verdict.fired and verdict.result is None
    assert verdict.reason == "2 of 3 'save changes' actions on /projects within the last 120 s"


def test_three_saves_with_one_outside_the_window_do_not_fire(explain, ph):
    now = T0 + 200
    verdict = explain([ph.save(now - 121), ph.save(now - 60), ph.save(now - 1)], now=now)
    assert not verdict.fired
    assert verdict.reason.startswith("2 of 3")
    assert "within the last 120 s" in verdict.reason
    # the same three saves, the first one second later, are all in the window
    assert explain([ph.save(now - 119), ph.save(now - 60), ph.save(now - 1)], now=now).fired


def test_latest_action_elsewhere_does_not_fire(explain, ph):
    events = [ph.save(T0 + 1), ph.save(T0 + 2), ph.save(T0 + 3), ph.pageview("/dashboard", T0 + 4)]
    verdict = explain(events, now=T0 + 5)
    assert not verdict.fired
    assert verdict.reason == "latest action is on /dashboard, not a /projects page"


@pytest.mark.parametrize("label", ["Bulk edit", "Apply to 3"])
def test_discovery_click_in_the_window_means_already_discovered(explain, ph, label):
    events = [
        ph.save(T0 + 1),
        ph.event(ts=T0 + 2, text=label),
        ph.save(T0 + 3),
        ph.save(T0 + 4),
        ph.save(T0 + 5),
    ]
    verdict = explain(events, now=T0 + 6)
    assert not verdict.fired
    assert verdict.reason == f"already discovered: '{label}' within the last 120 s"


def test_discovery_click_before_the_window_does_not_block(explain, ph):
    events = [ph.event(ts=T0, text="Bulk edit"), ph.save(T0 + 200), ph.save(T0 + 201), ph.save(T0 + 202)]
    assert explain(events, now=T0 + 203).fired


def test_saves_on_another_page_do_not_count(explain, ph):
    events = [
        ph.save(T0 + 1, path="/settings"),
        ph.save(T0 + 2, path="/settings"),
        ph.save(T0 + 3),
        ph.save(T0 + 4),
    ]
    verdict = explain(events, now=T0 + 5)
    assert not verdict.fired
    assert verdict.reason.startswith("2 of 3")


def test_saves_on_project_detail_pages_count(explain, ph):
    events = [ph.save(T0 + i, path=f"/projects/P-10{i}") for i in range(1, 4)]
    assert explain(events, now=T0 + 4).fired


def test_page_named_only_in_the_query_string_does_not_count(explain, ph):
    events = [ph.save(T0 + i, path="/settings?next=/projects") for i in range(1, 4)]
    assert not explain(events, now=T0 + 4).fired


@pytest.mark.parametrize("dashboard_at", ["first", "last"])
def test_out_of_order_batch_uses_timestamps_not_array_order(explain, ph, dashboard_at):
    # posthog delivers the saves newest-first; the /dashboard pageview is timestamped earliest
    saves = [ph.save(T0 + 30), ph.save(T0 + 20), ph.save(T0 + 10)]
    dashboard = ph.pageview("/dashboard", T0)
    events = [dashboard, *saves] if dashboard_at == "first" else [*saves, dashboard]
    verdict = explain(events, now=T0 + 31)
    assert verdict.fired, verdict.reason


def test_out_of_order_batches_use_timestamps_not_arrival_order(config, ph, bulk_edit):
    store = InMemoryActivityStore(config.activity, product_id=PRODUCT)
    store.add(ph.batch([ph.save(T0 + 30), ph.save(T0 + 20)], received_at=T0 + 31).actions, now=T0 + 31)
    # a delayed earlier batch: the /dashboard visit and the first save arrive last
    store.add(ph.batch([ph.save(T0 + 10), ph.pageview("/dashboard", T0)], received_at=T0 + 32).actions, now=T0 + 32)
    assert bulk_edit.explain(_context(store, "sess-1", T0 + 32)).fired


def test_out_of_order_batch_with_a_late_pageview_elsewhere_does_not_fire(explain, ph):
    # array order says "saves last", timestamps say the user already left for /dashboard
    events = [ph.pageview("/dashboard", T0 + 40), ph.save(T0 + 10), ph.save(T0 + 20), ph.save(T0 + 30)]
    verdict = explain(events, now=T0 + 41)
    assert not verdict.fired
    assert "/dashboard" in verdict.reason


def test_mixed_timestamp_formats_in_one_batch_fire(explain, ph):
    events = [
        ph.save(T0 + 1, ts_format="epoch"),
        ph.save(T0 + 2, ts_format="iso"),
        ph.save(T0 + 3, ts_format="epoch"),
    ]
    assert events[0]["timestamp"] == f"{T0 + 1:.3f}" and events[1]["timestamp"].endswith("Z")
    assert explain(events, now=T0 + 4).fired


def test_no_activity_is_explained(bulk_edit, config):
    ctx = _context(InMemoryActivityStore(config.activity, product_id=PRODUCT), "sess-1", T0)
    verdict = bulk_edit.explain(ctx)
    assert (verdict.fired, verdict.reason) == (False, "no activity in this session")


def test_trigger_without_eval_now_refuses_to_guess(bulk_edit, config, ph):
    store = InMemoryActivityStore(config.activity, product_id=PRODUCT)
    store.add(ph.batch([ph.save(T0)], received_at=T0).actions, now=T0)
    ctx = build_proactive_context_from_payloads(
        store.load_payloads(product_id=PRODUCT, session_id="sess-1"), lookback_seconds=None,
        now=T0, session_id="sess-1", product_id=PRODUCT,
    )
    with pytest.raises(ValueError, match="eval_now"):
        bulk_edit.explain(ctx)


# -- registry isolation -------------------------------------------------------------------


class _Exploding:
    trigger_id = "exploding"

    def explain(self, ctx):
        raise RuntimeError("boom")


class _Always:
    trigger_id = "always"

    def explain(self, ctx):
        result = ProactiveTriggerResult(trigger_id="always", body="hello")
        return TriggerVerdict("always", True, "always fires", result)


def test_raising_trigger_does_not_stop_the_triggers_after_it(ph, config):
    registry = ProactiveTriggerRegistry([IsolatedTrigger(_Exploding()), IsolatedTrigger(_Always())])
    store = InMemoryActivityStore(config.activity, product_id=PRODUCT)
    store.add(ph.batch([ph.save(T0)], received_at=T0).actions, now=T0)
    ctx = _context(store, "sess-1", T0)
    result = registry.evaluate_first(ctx)
    assert result is not None and (result.trigger_id, result.body) == ("always", "hello")
    verdicts = explain_all(registry.triggers, ctx)
    assert [v.to_dict() for v in verdicts] == [
        {"trigger_id": "exploding", "fired": False, "reason": "raised RuntimeError: boom"},
        {"trigger_id": "always", "fired": True, "reason": "always fires"},
    ]


def test_raising_trigger_before_bulk_edit_still_lets_the_engine_offer(engine, ph, monkeypatch):
    # The full rescan runs the registry as the SDK does (the index only knows its own kind).
    registry = TriggerRegistry([IsolatedTrigger(_Exploding()), *engine.registry.isolated])
    monkeypatch.setattr(engine, "strategy", FullRescan(engine.config, registry, engine.activity, engine.gate))
    offers = engine.ingest(ph.batch([ph.save(T0 + i) for i in range(3)], received_at=T0 + 3), now=T0 + 3)
    assert [o.trigger_id for o in offers] == ["bulk_edit_opportunity"]


def test_compiled_registry_keeps_config_order_and_isolates_each_trigger(config):
    registry = compile_registry(config)
    assert [t.trigger_id for t in registry.triggers] == [t.id for t in config.triggers]
    assert all(isinstance(t, IsolatedTrigger) for t in registry.triggers) and registry.isolated == tuple(registry.triggers)


# -- built-ins by id ----------------------------------------------------------------------


def _minimal(*triggers: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "product_id": PRODUCT,
        "session": {"interaction_timeout_s": 10, "cooldown_period_s": 20},
        "tours": [{"id": "nav_tour", "flow_id": "nav-flow", "label": "Show me around", "page": "/a"}],
        "triggers": list(triggers),
    }


PING_PONG = {
    "id": "canonical_url_ping_pong",
    "type": "builtin",
    "name": "Lost between pages",
    "description": "Back-and-forth navigation",
    "body": "Looking for something? I can point you to it.",
    "tours": ["nav_tour"],
}


def test_builtin_ping_pong_selected_by_id_fires_with_configured_body(ph, mono):
    engine = ProactiveEngine(parse_config(_minimal(PING_PONG)))
    events = [ph.pageview("/a", T0), ph.pageview("/b", T0 + 5), ph.pageview("/a", T0 + 10)]
    offers = engine.ingest(ph.batch(events, received_at=T0 + 11), now=T0 + 11)
    assert len(offers) == 1
    offer = offers[0]
    assert offer.trigger_id == "canonical_url_ping_pong"
    assert offer.body == "Looking for something? I can point you to it."
    assert [t.id for t in offer.tours] == ["nav_tour"]  # the user is back on /a


def test_builtin_without_body_keeps_the_sdk_text(ph, config):
    trigger = build_trigger(parse_config(_minimal({k: v for k, v in PING_PONG.items() if k != "body"})).triggers[0])
    assert isinstance(trigger, BuiltinTrigger)
    store = InMemoryActivityStore(config.activity, product_id=PRODUCT)
    events = [ph.pageview("/a", T0), ph.pageview("/b", T0 + 5), ph.pageview("/a", T0 + 10)]
    store.add(ph.batch(events, received_at=T0 + 11).actions, now=T0 + 11)
    verdict = trigger.explain(_context(store, "sess-1", T0 + 11))
    assert verdict.fired and verdict.reason == "Lost between pages: matched"
    assert verdict.result.body == DEFAULT_PROACTIVE_QUICK_REPLY_BODY


def test_builtin_ping_pong_does_not_fire_on_forward_navigation(ph, mono):
    engine = ProactiveEngine(parse_config(_minimal(PING_PONG)))
    events = [ph.pageview("/a", T0), ph.pageview("/b", T0 + 5), ph.pageview("/c", T0 + 10)]
    assert engine.ingest(ph.batch(events, received_at=T0 + 11), now=T0 + 11) == []
    verdicts = engine.debug("user-1", now=T0 + 11)["triggers"]
    assert verdicts == [
        {"trigger_id": "canonical_url_ping_pong", "fired": False, "reason": "Lost between pages: pattern not present"}
    ]


async def test_builtin_time_based_trigger_fires_on_tick_with_its_context_extra(ph, mono):
    dwell = {
        "id": "user_page_dwell",
        "type": "builtin",
        "name": "Lingering",
        "description": "Stays on one page",
        "body": "Need a hand with this page?",
        "context_extra": {"dwell_threshold_seconds": 90, "user_page_dwell_max_actions": 3},
    }
    engine = ProactiveEngine(parse_config(_minimal(dwell)))
    sub = engine.hub.subscribe("user-1")
    assert engine.ingest(ph.batch([ph.pageview("/reports", T0)], received_at=T0), now=T0) == []
    assert engine.tick(now=T0 + 60).offers == 0  # not yet lingering
    report = engine.tick(now=T0 + 95)
    assert report.offers == 1
    offer = await sub.next(timeout=0.1)
    assert (offer.trigger_id, offer.body) == ("user_page_dwell", "Need a hand with this page?")


def test_unknown_builtin_id_is_an_error_at_build_time():
    config = parse_config(_minimal({**PING_PONG, "id": "mind_reader"}))  # parsing only checks shape
    with pytest.raises(ValueError, match="unknown built-in trigger 'mind_reader'"):
        ProactiveEngine(config)
    with pytest.raises(ValueError, match="canonical_url_ping_pong"):  # the message lists what exists
        build_trigger(config.triggers[0])


def test_trigger_referring_to_an_unknown_tour_is_a_config_error():
    with pytest.raises(ConfigError, match=r"triggers\[0\]\.tours: unknown tour id\(s\) \['nope'\]"):
        parse_config(_minimal({**PING_PONG, "tours": ["nope"]}))
