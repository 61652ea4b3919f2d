"""Measuring offers (addons.insights): each offer's life through the engine and the journal,
the holdout, adoption, the lift and its interval, the funnel JSON and the Prometheus text."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Dict, List

import pytest
from prometheus_client.parser import text_string_to_metric_families

from addons.config import ActionMatch, AdoptionRule, ConfigError, ProactiveConfig, parse_config
from addons.insights.funnel import BadPeriod, funnel, period
from addons.insights.holdout import Holdout
from addons.insights.journal import BadOfferEvent, UnknownOffer
from addons.insights.lift import adoption_lift, wilson_interval
from addons.insights.records import day_of
from addons.offers.engine import ProactiveEngine
from addons.offers.offer import Offer

T0 = 1779188762.919
DAY = day_of(T0)
TRIGGER = "bulk_edit_opportunity"


def _engine(config: ProactiveConfig, holdout_pct: float = 0.0) -> ProactiveEngine:
    trigger = replace(config.triggers[0], holdout_pct=holdout_pct)
    return ProactiveEngine(replace(config, triggers=(trigger,)), clock=lambda: T0)


def _fire(engine: ProactiveEngine, ph, user: str, at: float = T0, *, subscribe: bool = True) -> Offer:
    """Three saves by ``user`` with a toast stream open: one offer, made at ``at``."""
    session = f"s-{user}"
    if subscribe:
        engine.subscribe(user, now=at)
    saves = [ph.save(at - 3 + n, user=user, session=session) for n in range(3)]
    offers = engine.ingest(ph.batch(saves, received_at=at), now=at)
    assert len(offers) == 1
    return offers[0]


def _adopt(engine: ProactiveEngine, ph, user: str, at: float) -> None:
    click = ph.event(ts=at, text="Apply to 3", user=user, session=f"s-{user}")
    engine.ingest(ph.batch([click], received_at=at), now=at)


def _stages(engine: ProactiveEngine) -> Dict[str, int]:
    return funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]["stages"]


def _metric(engine: ProactiveEngine, name: str, **labels: str) -> float:
    """One sample of /metrics, read back with prometheus_client's own parser."""
    text, _ = engine.journal.counters.render()
    for family in text_string_to_metric_families(text.decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    raise AssertionError(f"no sample {name} {labels}")


# -- an offer's life ---------------------------------------------------------------------------


def test_an_offer_shown_then_dismissed_counts_each_stage_once(config, mono, ph):
    engine = _engine(config)
    offer = _fire(engine, ph, "ada")
    journal = engine.journal
    assert journal.report("ada", offer.offer_id, "shown", None, now=T0 + 0.02)
    assert not journal.report("ada", offer.offer_id, "shown", None, now=T0 + 5)  # a second tab: once
    assert journal.report("ada", offer.offer_id, "dismissed", "escape", now=T0 + 3)
    assert not journal.report("ada", offer.offer_id, "open_chat", None, now=T0 + 4)  # the first outcome stands

    stages = _stages(engine)
    assert {k: v for k, v in stages.items() if v} == {"fired": 1, "delivered": 1, "shown": 1, "dismissed": 1}
    body = funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]
    assert body["dismissed"] == {"close": 0, "escape": 1, "timeout": 0, "navigated": 0}
    assert body["latency"]["event_to_toast_s"]["count"] == 1
    assert body["latency"]["event_to_toast_s"]["buckets"][:3] == [[0.005, 0], [0.01, 0], [0.025, 1]]

    assert _metric(engine, "proactive_offer_stage_total", trigger=TRIGGER, stage="shown") == 1
    assert _metric(engine, "proactive_offer_stage_total", trigger=TRIGGER, stage="open_chat") == 0
    assert _metric(engine, "proactive_offer_dismissed_total", trigger=TRIGGER, reason="escape") == 1
    assert _metric(engine, "proactive_event_to_toast_seconds_bucket", trigger=TRIGGER, le="0.025") == 1
    assert _metric(engine, "proactive_event_to_toast_seconds_bucket", trigger=TRIGGER, le="0.01") == 0


def test_a_tour_records_its_steps_and_where_it_was_abandoned(config, mono, ph):
    engine = _engine(config)
    offer = _fire(engine, ph, "bo")
    journal = engine.journal
    journal.tour_step("bo", offer.offer_id, 1)
    journal.tour_step("bo", offer.offer_id, 1)  # a repeated report
    assert journal.tour_ended("bo", offer.offer_id, "abandoned", "closed", 2)
    assert not journal.tour_ended("bo", offer.offer_id, "completed", None, 4)  # it already ended

    body = funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]
    assert body["stages"]["show_me"] == 1  # a tour step implies Show me, even if its report was lost
    assert body["stages"]["tour_abandoned"] == 1 and body["stages"]["tour_completed"] == 0
    assert body["tour"] == {"steps": {"1": 1}, "abandoned": {"closed": 1, "element_missing": 0, "navigated": 0},
                            "abandoned_at_step": {"2": 1}}
    assert _metric(engine, "proactive_tour_abandoned_total", trigger=TRIGGER, reason="closed", step="2") == 1


def test_open_chat_its_first_bubble_follow_up_and_reply(config, mono, ph):
    engine = _engine(config)
    offer = _fire(engine, ph, "cy")
    journal = engine.journal
    journal.report("cy", offer.offer_id, "open_chat", None, now=T0 + 1)
    journal.first_bubble("cy", offer.offer_id, clicked_at=T0 + 1.5, now=T0 + 1.3)
    journal.follow_up("cy", offer.offer_id, "fallback")
    journal.replied("cy")
    journal.replied("cy")

    body = funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]
    assert (body["stages"]["open_chat"], body["stages"]["follow_up"], body["stages"]["replied"]) == (1, 1, 1)
    assert body["follow_up"] == {"model": 0, "fallback": 1}
    latency = body["latency"]["click_to_first_bubble_s"]
    assert latency["count"] == 1 and latency["sum"] == pytest.approx(0.3)  # from the reported click, not the inject


def test_reports_about_unknown_or_someone_elses_offers_are_refused(config, mono, ph):
    engine = _engine(config)
    offer = _fire(engine, ph, "di")
    journal = engine.journal
    with pytest.raises(UnknownOffer):
        journal.report("di", "no-such-offer", "shown", None, now=T0)
    with pytest.raises(UnknownOffer):
        journal.report("eve", offer.offer_id, "shown", None, now=T0)
    for event, reason in (("clicked", None), ("dismissed", None), ("dismissed", "bored")):
        with pytest.raises(BadOfferEvent):
            journal.report("di", offer.offer_id, event, reason, now=T0)
    for step in (0, 51, "2", True, 1.5):
        with pytest.raises(BadOfferEvent):
            journal.tour_step("di", offer.offer_id, step)
    with pytest.raises(BadOfferEvent):
        journal.tour_ended("di", offer.offer_id, "abandoned", "bored", 2)
    assert sum(_stages(engine).values()) == 2  # fired and delivered; nothing else was counted


def test_an_offer_no_tab_opened_for_expires_unseen(config, mono, ph):
    engine = _engine(config)
    saves = [ph.save(T0 - 3 + n, user="fay", session="s-fay") for n in range(3)]
    assert len(engine.ingest(ph.batch(saves, received_at=T0), now=T0)) == 1  # parked: no stream
    engine.tick(now=T0 + config.delivery.pending_ttl_s + 1)
    stages = _stages(engine)
    assert (stages["fired"], stages["expired"], stages["delivered"]) == (1, 1, 0)


def test_an_offer_past_its_time_when_a_tab_opens_is_counted_expired(config, mono, ph):
    engine = _engine(config)
    _fire_parked = [ph.save(T0 - 3 + n, user="kim", session="s-kim") for n in range(3)]
    assert len(engine.ingest(ph.batch(_fire_parked, received_at=T0), now=T0)) == 1
    engine.subscribe("kim", now=T0 + config.delivery.pending_ttl_s + 1)  # before any tick
    stages = _stages(engine)
    assert (stages["fired"], stages["expired"], stages["delivered"]) == (1, 1, 0)


# -- adoption and the holdout ------------------------------------------------------------------


def test_adoption_is_credited_to_the_offer_within_its_window_else_to_the_baseline(config, mono, ph):
    engine = _engine(config)
    _adopt(engine, ph, "gus", T0 - 600)  # before any offer: the baseline
    _adopt(engine, ph, "gus", T0 - 500)  # the same spell: not counted again
    offer = _fire(engine, ph, "gus")
    _adopt(engine, ph, "gus", T0 + 60)
    _adopt(engine, ph, "gus", T0 + 90)  # the offer is adopted once
    _adopt(engine, ph, "hal", T0 + 60)  # another user, no offer: the baseline

    adoption = funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]["adoption"]
    assert adoption["shown"] == {"offers": 1, "adopted": 1, "rate": 1.0}
    assert adoption["baseline"] == 2
    assert engine.stores.ledger.get(offer.offer_id).stages >= {"adopted"}
    assert _metric(engine, "proactive_adoption_total", trigger=TRIGGER, group="baseline") == 2


def test_an_adoption_after_the_window_is_the_baseline(config, mono, ph):
    engine = _engine(config)
    _fire(engine, ph, "ivy")
    _adopt(engine, ph, "ivy", T0 + config.triggers[0].adopted.within_s + 1)
    adoption = funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]["adoption"]
    assert adoption["shown"]["adopted"] == 0 and adoption["baseline"] == 1


def test_holdout_assignment_is_deterministic_and_near_its_share():
    holdout = Holdout("seed-1")
    users = [f"user-{n}" for n in range(20_000)]
    held = [u for u in users if holdout.holds_out(TRIGGER, u, 20)]
    assert 0.19 < len(held) / len(users) < 0.21
    assert held == [u for u in users if Holdout("seed-1").holds_out(TRIGGER, u, 20)]  # another replica agrees
    assert held != [u for u in users if Holdout("seed-2").holds_out(TRIGGER, u, 20)]  # a new seed redraws
    assert not any(holdout.holds_out(TRIGGER, u, 0) for u in users[:1000])
    assert all(holdout.holds_out(TRIGGER, u, 100) for u in users[:1000])


def test_held_out_users_get_no_toast_yet_their_offer_and_adoption_are_counted(config, mono, ph):
    engine = _engine(config, holdout_pct=50)
    holdout = Holdout(config.insights.holdout_seed)
    users = [f"user-{n}" for n in range(40)]
    held = {u for u in users if holdout.holds_out(TRIGGER, u, 50)}
    assert 10 < len(held) < 30
    streams = {u: engine.subscribe(u, now=T0) for u in users}
    for user in users:
        _fire(engine, ph, user, subscribe=False)
        _adopt(engine, ph, user, T0 + 30)
    for user, stream in streams.items():
        assert stream._queue.qsize() == (0 if user in held else 1), user  # what the toast stream received
        assert engine.gate.check(f"s-{user}").allowed is False  # both groups' sessions moved alike

    adoption = funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]["adoption"]
    assert adoption["held_out"] == {"offers": len(held), "adopted": len(held), "rate": 1.0}
    assert adoption["shown"]["offers"] == len(users) - len(held)


# -- the lift ---------------------------------------------------------------------------------


def test_the_wilson_interval_matches_a_published_value():
    # Newcombe (1998), table I: 81/263 → 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)


def test_the_newcombe_interval_matches_a_published_value():
    # Newcombe (1998), table II, example (a): 56/70 vs 48/80, difference 0.2000, method 10: 0.0524 to 0.3339.
    lift = adoption_lift(56, 70, 48, 80)
    assert lift.difference == pytest.approx(0.2)
    assert (round(lift.low, 4), round(lift.high, 4)) == (0.0524, 0.3339)
    assert adoption_lift(3, 10, 0, 0).difference is None
    assert adoption_lift(3, 10, 0, 5).relative is None


def test_on_a_synthetic_population_the_known_effect_lies_inside_the_interval(config, mono, ph):
    """600 users through the engine and the journal; half held out; adoption 0.45 when
    shown and 0.25 when held out: the true lift is 0.20."""
    engine = _engine(config, holdout_pct=50)
    holdout = Holdout(config.insights.holdout_seed)
    rng = random.Random(20261130)
    for n in range(600):
        user = f"pop-{n}"
        _fire(engine, ph, user)
        rate = 0.25 if holdout.holds_out(TRIGGER, user, 50) else 0.45
        if rng.random() < rate:
            _adopt(engine, ph, user, T0 + 120)
    lift = funnel(engine.config, engine.stores.ledger.totals(DAY, DAY), DAY, DAY)["triggers"][0]["adoption"]["lift"]
    assert lift["low"] < 0.20 < lift["high"]
    assert lift["low"] > 0  # an effect this size on 600 users is told apart from none


def test_the_interval_covers_the_true_difference_about_95_times_in_100():
    rng = random.Random(7)
    covered = 0
    runs = 1000
    for _ in range(runs):
        shown, held = 120, 80
        a = sum(rng.random() < 0.30 for _ in range(shown))
        b = sum(rng.random() < 0.20 for _ in range(held))
        lift = adoption_lift(a, shown, b, held)
        covered += lift.low <= 0.10 <= lift.high
    assert 0.93 <= covered / runs <= 0.975


# -- the funnel's periods and the config ---------------------------------------------------------


def test_periods_are_whole_utc_days_and_bad_ones_are_refused():
    assert period(None, None, now=T0) == ("2026-05-13", "2026-05-19")
    assert period("2026-05-01", "2026-05-02", now=T0) == ("2026-05-01", "2026-05-02")
    bad = (("yesterday", None), ("2026-05-03", "2026-05-01"), ("2020-01-01", "2026-01-01"), ("2026-5-1", None),
           (None, "0001-01-03"))
    for first, last in bad:
        with pytest.raises(BadPeriod):
            period(first, last, now=T0)


def test_stages_count_in_the_day_the_offer_fired(config, mono, ph):
    engine = _engine(config)
    late = T0 + 86_400 - (T0 % 86_400) - 10  # ten seconds before midnight UTC
    offer = _fire(engine, ph, "jo", at=late)
    engine.journal.report("jo", offer.offer_id, "shown", None, now=late + 30)  # after midnight
    first, second = day_of(late), day_of(late + 30)
    assert first != second
    ledger = engine.stores.ledger
    assert funnel(engine.config, ledger.totals(first, first), first, first)["triggers"][0]["stages"]["shown"] == 1
    assert funnel(engine.config, ledger.totals(second, second), second, second)["triggers"][0]["stages"]["shown"] == 0


def test_the_ledger_keeps_only_its_retention_of_days(config):
    from addons.stores.memory import InMemoryOfferLedger

    ledger = InMemoryOfferLedger(max_offers=10, retention_days=3)
    for day in ("2026-05-01", "2026-05-02", "2026-05-03", "2026-05-04"):
        ledger.increment(day, TRIGGER, "stage:fired")
    ledger.increment("2026-04-01", TRIGGER, "stage:fired")  # older than all that is kept
    assert ledger.totals("2026-01-01", "2026-12-31") == {TRIGGER: {"stage:fired": 3}}


def test_measurement_settings_are_checked():
    base = {"product_id": "p", "triggers": [{
        "id": "t", "type": "dwell", "page": "/x", "min_s": 5, "max_actions": 2, "body": "b",
    }]}

    def with_trigger(**extra: object) -> ProactiveConfig:
        raw = {**base, "triggers": [{**base["triggers"][0], **extra}]}  # type: ignore[dict-item]
        return parse_config(raw)

    trigger = with_trigger(holdout_pct=12.5, adopted={"action": {"label": ["Apply"]}, "within_s": 60}).triggers[0]
    assert trigger.holdout_pct == 12.5
    assert trigger.adopted == AdoptionRule(action=ActionMatch(label=("apply",)), within_s=60.0)
    for bad in ({"holdout_pct": 101}, {"holdout_pct": -1}, {"adopted": {"within_s": 60}}, {"adopted": {"action": {}}}):
        with pytest.raises(ConfigError):
            with_trigger(**bad)
    with pytest.raises(ConfigError):
        parse_config({**base, "insights": {"retention_days": 0}})


def test_the_copilot_s_own_posthog_events_are_not_activity(engine, ph):
    reports: List[Dict] = [ph.event("proactive offer shown", ts=T0, offer_id="o1", trigger_id=TRIGGER)]
    batch = ph.batch(reports, received_at=T0)
    assert batch.actions == () and batch.skipped == 1


def test_staged_counts_reach_the_metrics_only_when_flushed(config, mono, ph):
    from addons.insights.metrics import OfferMetrics, StagedCounters

    metrics, staged = OfferMetrics([TRIGGER]), StagedCounters()
    engine = ProactiveEngine(replace(config, triggers=(config.triggers[0],)), clock=lambda: T0, counters=staged)
    offer = _fire(engine, ph, "lea")
    engine.journal.report("lea", offer.offer_id, "dismissed", "close", now=T0 + 2)

    def value(name: str, **labels: str) -> float:
        text = metrics.render()[0].decode()
        return next(s.value for f in text_string_to_metric_families(text) for s in f.samples
                    if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    assert value("proactive_offer_stage_total", trigger=TRIGGER, stage="fired") == 0  # a commit may still be lost
    staged.flush(metrics)
    assert value("proactive_offer_stage_total", trigger=TRIGGER, stage="fired") == 1
    assert value("proactive_offer_dismissed_total", trigger=TRIGGER, reason="close") == 1
    staged.flush(metrics)  # flushed once
    assert value("proactive_offer_stage_total", trigger=TRIGGER, stage="delivered") == 1
