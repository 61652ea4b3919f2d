"""Which users a trigger holds out: a deterministic share, the same on every replica and
across restarts (a hash of seed, trigger and user), so a user never flips between groups."""

from __future__ import annotations

import hashlib


class Holdout:
    def __init__(self, seed: str) -> None:
        self._seed = seed.encode("utf-8")

    def position(self, trigger_id: str, user_id: str) -> float:
        """Where the user falls for this trigger, uniform in [0, 100)."""
        digest = hashlib.sha256(b"\0".join((self._seed, trigger_id.encode(), user_id.encode()))).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 * 100

    def holds_out(self, trigger_id: str, user_id: str, pct: float) -> bool:
        return pct > 0 and self.position(trigger_id, user_id) < pct
