"""Where the copilot's state lives: the protocols (``protocols``) and the backends.

A backend is a module with a ``…_stores(config) -> Stores`` factory; ``build_stores`` is the
one place that chooses between them.
"""

from __future__ import annotations

from addons.config import ProactiveConfig
from addons.stores.protocols import Stores


def build_stores(config: ProactiveConfig) -> Stores:
    from addons.stores.memory import memory_stores

    return memory_stores(config)
