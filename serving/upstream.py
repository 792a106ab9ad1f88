"""Serving's calls to the orchestrator: behind the breaker, the client's typed errors mapped to serving's.

The caller's mistakes stay the caller's (UnknownType 404, NoVersionInUse 409 NotServable, InvalidField 422
InvalidField); a user without a vector is NoUserVector (serving falls back); anything else is
OrchestratorDown, on which serving degrades. Only OrchestratorUnavailable (unreachable, timed out, 5xx)
counts against the breaker: a refusal is an answer. Each call gets at most what is left of the request's
budget (service.admission.remaining); running out of it is a timeout like any other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from contract.wire import AggregateRequest, InUseChange, TypeInfo, UserVector, WeightedAttribute
from orchestrator_client import OrchestratorClient, errors
from service.admission import remaining
from service.breaker import Breaker
from serving.errors import InvalidField, NotServable, UnknownType
from serving.metrics import Metrics

T = TypeVar("T")


class OrchestratorDown(Exception):  # noqa: N818 - a condition serving degrades on, not an HTTP error
    """Serving cannot use the orchestrator now: unreachable, failing, breaker open, or refusing our call."""


class NoUserVector(Exception):  # noqa: N818 - a condition serving falls back on
    """The orchestrator has no vector for this user (unknown user, or nothing to aggregate)."""


class Orchestrator:
    """The orchestrator as serving uses it (one per app)."""

    def __init__(self, client: OrchestratorClient, breaker: Breaker, metrics: Metrics) -> None:
        self.client = client
        self.breaker = breaker
        self._metrics = metrics

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        await self.client.aclose()

    async def type_info(self, type_name: str) -> TypeInfo:
        """One type's state."""
        return await self._call(self.client.type_info(type_name), type_name)

    async def list_types(self) -> list[TypeInfo]:
        """Every registered type."""
        return await self._call(self.client.list_types(), "")

    async def in_use_history(self, type_name: str, limit: int) -> list[InUseChange]:
        """The newest in_use changes of a type, newest first."""
        return await self._call(self.client.in_use_history(type_name, limit), type_name)

    async def user_vector(self, type_name: str, user_id: str) -> UserVector:
        """The user's vector of the in-use version (direct, or aggregated from the stored profile)."""
        return await self._call(self.client.user_vector(type_name, user_id), type_name)

    async def aggregate(self, type_name: str, attributes: Sequence[WeightedAttribute]) -> UserVector:
        """A vector of the in-use version aggregated from explicit attributes."""
        request = AggregateRequest(attributes=list(attributes))
        return await self._call(self.client.aggregate(type_name, request), type_name)

    async def _call(self, call: Coroutine[Any, Any, T], type_name: str) -> T:
        if not self.breaker.allow():
            call.close()
            raise OrchestratorDown("orchestrator unavailable (circuit open)")
        budget = remaining()
        if budget is not None and budget <= 0:  # spent before this call: not the orchestrator's doing
            call.close()
            raise OrchestratorDown("orchestrator not called: the request's time budget ran out")
        try:
            if budget is None or budget >= self.client.timeout:
                # The client's own timeout ends the call first: no second timer (~7 us a call under uvloop).
                result = await call
            else:
                async with asyncio.timeout(budget):
                    result = await call
        except (errors.OrchestratorUnavailable, TimeoutError) as exc:
            self.breaker.failure()
            self._metrics.dependency_errors.labels("orchestrator").inc()
            why = (
                str(exc)
                if isinstance(exc, errors.OrchestratorUnavailable)
                else "the request's budget ran out"
            )
            raise OrchestratorDown(f"orchestrator unavailable: {why}") from exc
        except errors.OrchestratorCallError as exc:
            self.breaker.success()
            raise _mapped(exc, type_name) from exc
        self.breaker.success()
        return result


def _mapped(exc: errors.OrchestratorCallError, type_name: str) -> Exception:
    """Serving's error for a refusal of the orchestrator's."""
    if isinstance(exc, errors.UnknownUser | errors.NoAttributesFound):
        return NoUserVector(exc.detail)
    if isinstance(exc, errors.UnknownType):
        return UnknownType(f"embedding_type: no embedding type {type_name!r} is registered")
    if isinstance(exc, errors.NoVersionInUse):
        return NotServable(f"embedding_type: type {type_name!r} has no in-use version yet")
    if isinstance(exc, errors.InvalidField):
        return InvalidField(exc.detail)
    # Our key or our call was refused (Unauthorized, Forbidden, ...): our misconfiguration, not the caller's.
    return OrchestratorDown(f"orchestrator refused serving's call: {exc}")
