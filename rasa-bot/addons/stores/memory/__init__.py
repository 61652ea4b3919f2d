"""The default backend: every store in this process's memory, bounded by ``proactive.yml``."""

from __future__ import annotations

from typing import Optional

from addons.config import ProactiveConfig
from addons.stores.memory.activity import InMemoryActivityStore, SessionActivity
from addons.stores.memory.ledger import InMemoryOfferLedger, UserLedger
from addons.stores.memory.offers import InMemoryOfferHistory, InMemoryOfferStore, UserOffers
from addons.stores.memory.people import InMemoryChatOwners, InMemoryClockSkew, InMemoryFirstNames
from addons.stores.memory.schedule import RevisedTickSchedule, SessionPlan, TickSchedule
from addons.stores.memory.sessions import InMemorySessionStateStore, RevisedSessionStateStore
from addons.stores.protocols import Stores

__all__ = [
    "InMemoryActivityStore", "InMemoryChatOwners", "InMemoryClockSkew", "InMemoryFirstNames",
    "InMemoryOfferHistory", "InMemoryOfferLedger", "InMemoryOfferStore", "InMemorySessionStateStore",
    "RevisedSessionStateStore", "RevisedTickSchedule", "SessionActivity", "SessionPlan", "TickSchedule", "UserLedger",
    "UserOffers", "memory_stores",
]


def memory_stores(config: ProactiveConfig, *, revised: bool = False, max_offers: Optional[int] = None) -> Stores:
    """``revised``: the session states and the tick plan keep a revision per session
    (``RevisedSessionStateStore``, ``RevisedTickSchedule``; the activity always does), for a
    unit of work's bundle that exports only what moved.
    ``max_offers``: the ledger's bound on offer records (``insights.max_offers`` by default)."""
    max_sessions = config.activity.max_sessions
    return Stores(
        activity=InMemoryActivityStore(config.activity, product_id=config.product_id),
        session_states=(RevisedSessionStateStore if revised else InMemorySessionStateStore)(config.session),
        offer_history=InMemoryOfferHistory(max_users=max_sessions),
        offers=InMemoryOfferStore(replay_s=config.delivery.replay_s, max_sessions=max_sessions),
        chat_owners=InMemoryChatOwners(),
        tick_plan=RevisedTickSchedule() if revised else TickSchedule(),
        first_names=InMemoryFirstNames(max_sessions),
        clock_skew=InMemoryClockSkew(max_clients=max_sessions),
        ledger=InMemoryOfferLedger(max_offers=config.insights.max_offers if max_offers is None else max_offers,
                                   retention_days=config.insights.retention_days),
    )
