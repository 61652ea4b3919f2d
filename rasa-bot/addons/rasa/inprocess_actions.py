"""Run rasa_sdk actions inside the ``rasa run`` process instead of over HTTP.

Rasa 3.6 OSS calls custom actions through ``action_endpoint.request(json=...)``. This
endpoint answers that call by running the rasa_sdk ``ActionExecutor`` in-process for the
actions it has registered, and forwards any other action to the endpoint configured in
``endpoints.yml`` (a team's existing action server keeps working). It needs no port of
its own, so ``rasa run -p <any>`` works unchanged.
"""

from __future__ import annotations

import logging
from typing import Any, List, Optional

from rasa.core.actions.action import ActionExecutionRejection
from rasa.shared.exceptions import RasaException
from rasa.utils.endpoints import EndpointConfig
from rasa_sdk.executor import ActionExecutor
from rasa_sdk.interfaces import ActionExecutionRejection as SdkActionExecutionRejection

logger = logging.getLogger(__name__)


class InProcessActionEndpoint(EndpointConfig):
    def __init__(self, executor: ActionExecutor, fallback: Optional[EndpointConfig] = None) -> None:
        super().__init__(url=fallback.url if fallback else "in-process://actions")
        self.executor = executor
        self.fallback = fallback

    @classmethod
    def for_package(cls, package: str, fallback: Optional[EndpointConfig] = None) -> "InProcessActionEndpoint":
        executor = ActionExecutor()
        executor.register_package(package)
        if not executor.actions:
            raise RasaException(f"no rasa_sdk actions found in package {package!r}")
        return cls(executor, fallback)

    @classmethod
    def install(cls, agent: Any, package: str) -> "InProcessActionEndpoint":
        """Serve ``package``'s actions in-process for ``agent``; others go to its configured endpoint."""
        endpoint = cls.for_package(package, fallback=agent.action_endpoint)
        agent.action_endpoint = endpoint  # used when a model is (re)loaded later
        if agent.processor is not None:
            agent.processor.action_endpoint = endpoint
        logger.info("running actions in-process: %s", ", ".join(endpoint.action_names))
        return endpoint

    @property
    def action_names(self) -> List[str]:
        return sorted(self.executor.actions)

    async def request(self, method: str = "post", subpath: Optional[str] = None, content_type: Optional[str] = "application/json", compress: bool = False, **kwargs: Any) -> Optional[Any]:
        action_call = kwargs.get("json") or {}
        name = action_call.get("next_action")
        if name not in self.executor.actions:
            if self.fallback is None:
                raise RasaException(
                    f"action {name!r} is not one of the in-process actions {self.action_names} "
                    f"and endpoints.yml configures no action_endpoint to forward it to"
                )
            return await self.fallback.request(method, subpath, content_type, compress, **kwargs)
        try:
            return await self.executor.run(action_call)
        except SdkActionExecutionRejection as e:
            raise ActionExecutionRejection(e.action_name, e.message) from e
        except Exception as e:
            # What Rasa gets from a failing action server: its processor logs it and the
            # conversation goes on without the action's events.
            logger.exception("in-process action %s failed", name)
            raise RasaException(f"Failed to execute custom action {name!r}: {type(e).__name__}: {e}") from e
