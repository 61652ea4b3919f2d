"""The tutorial's periodic pass, as the baseline for the engine's tick.

Every tick it walks every tracked user, rebuilds their session's trigger context from all
stored actions (``load_payloads`` → ``build_proactive_context_from_payloads``) and runs the
trigger registry, after checking the session gate. It reads the engine's own stores, so
it sees exactly the data the engine's tick sees; it makes no offers (candidates are only
counted), so running it changes nothing the engine's next tick depends on.
"""

from __future__ import annotations

from autoplay_sdk.proactive.triggers.context_source import build_proactive_context_from_payloads

from addons.offers.engine import ProactiveEngine
from addons.offers.triggers import EVAL_NOW


def rebuild_all_contexts_tick(engine: ProactiveEngine, now: float) -> int:
    """One tutorial-style pass over every session; returns how many would fire."""
    product_id = engine.config.product_id
    candidates = 0
    for user_id, session_id in list(engine.activity.latest_sessions()):
        if not engine.gate.check(session_id).allowed:
            continue
        payloads = engine.activity.load_payloads(product_id=product_id, session_id=session_id)
        ctx = build_proactive_context_from_payloads(
            payloads,
            lookback_seconds=None,
            max_actions=None,
            now=now,
            session_id=session_id,
            product_id=product_id,
            action_count=sum(p.count for p in payloads),
            context_extra={EVAL_NOW: now},
        )
        candidates += engine.registry.evaluate_first(ctx) is not None
    return candidates
