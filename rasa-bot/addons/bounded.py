"""The one bounded map every in-memory structure uses, so none grows without limit."""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Optional, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(OrderedDict[K, V]):
    """A dict of at most ``max_size`` keys; past that, the least recently touched go first.

    ``touch`` is the write that counts as use. Plain item assignment keeps a key's place
    (for callers that update without refreshing, such as a suppressed-log counter).
    ``on_evict`` sees each evicted key and value, for callers with side tables to clean.
    """

    def __init__(self, max_size: int, on_evict: Optional[Callable[[K, V], object]] = None) -> None:
        super().__init__()
        self.max_size = max_size
        self._on_evict = on_evict

    def touch(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.max_size:
            evicted_key, evicted_value = self.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(evicted_key, evicted_value)
