"""Suite order and fixtures shared by every layer.

Fast unit tests run first, then the real `rasa run` tests, then the browser. Under
`pytest -n N --dist loadgroup` (`make test`), each module's tests run in one worker, as they
share its servers; the browser tests, which share one app, one `rasa run` and the artifacts
folder, run in one worker too.
"""

from typing import Iterator, List

import pytest

from fake_llm import FakeLLM, Reply

_ORDER = ("unit", "integration", "browser")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the group markers
def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        parts = item.path.parts
        return next((i for i, name in enumerate(_ORDER) if name in parts), len(_ORDER))

    items.sort(key=rank)  # stable: keeps file and definition order within each layer
    for item in items:  # a module's tests share its fixtures (servers): they stay together
        group = "browser" if "browser" in item.path.parts else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(scope="session")
def fake_llm_server() -> Iterator[FakeLLM]:
    server = FakeLLM().start()
    yield server
    server.stop()


@pytest.fixture
def fake_llm(fake_llm_server: FakeLLM) -> FakeLLM:
    """The loopback OpenAI-compatible server, reset to one default reply for this test."""
    return fake_llm_server.script(Reply())
