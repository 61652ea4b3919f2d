"""Suite order: fast unit tests first, then the real `rasa run` tests, then the browser."""

from typing import List

import pytest

_ORDER = ("unit", "integration", "browser")


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        parts = item.path.parts
        return next((i for i, name in enumerate(_ORDER) if name in parts), len(_ORDER))

    items.sort(key=rank)  # stable: keeps file and definition order within each layer
