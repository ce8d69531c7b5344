"""Each client's share of Gradio's queue, so that one client cannot take every slot and everyone is served in turn.

Gradio bounds its queue per app (`max_size`), not per client: one client sending as many requests as there are
slots makes every other visitor get "Queue is full". `ClientGate` gives each client (by address,
`clients.client_address`) a share of the requests queued or running at once: `max_requests_per_client` of any
kind, `max_model_requests_per_client` of the model's events, each never more than the queue's size less one. The
excess is refused with HTTP 429 and a message saying why and what to do, before it takes a slot.

The gate sits where every request enters the queue (`Queue.push`, which `/gradio_api/queue/join`, the REST route
`/gradio_api/call/<name>` and the browser all go through), not in the handlers: a handler runs only once its event
has left the queue, too late to keep slots free. It keeps no count of its own to leak: what a client has in flight is
read from the queue's own record of its events (`Queue.event_ids_to_events`, which Gradio empties as each event
completes, fails, is cancelled, or is dropped because its client went away), plus the requests being admitted at
this moment.

`install()` routes Gradio's `Queue.push` through the gate of the Blocks that owns the queue (`blocks.client_gate`,
set by `demo.build_demo`); a Blocks without one is not gated. It works however the Blocks is served (`launch`,
`gr.mount_gradio_app`), as long as the studio's Blocks is the one served, not rendered inside another.
"""

from __future__ import annotations

import contextlib
import functools
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import HTTPException
from gradio import queueing

from .clients import TrustedProxies, client_address
from .settings import Limits

TOO_MANY_REQUESTS = 429
Push = Callable[..., Awaitable[Any]]


class ClientGate:
    """Admits a request into the queue only while its client is within its share (see the module's docstring).

    model_concurrency_id: the concurrency id every model event shares (their share is counted apart)."""

    def __init__(self, limits: Limits, proxies: TrustedProxies, model_concurrency_id: str) -> None:
        self.limits = limits
        self.proxies = proxies
        self.model_concurrency_id = model_concurrency_id
        self._admitting: Counter[tuple[str, bool]] = Counter()  # (client, model event) being pushed right now

    def in_flight(self, queue: queueing.Queue, client: str) -> tuple[int, int]:
        """(requests, model requests) of `client` queued or running in `queue`, or being admitted now."""
        requests = models = 0
        for event in list(queue.event_ids_to_events.values()):
            if client_address(event.request, self.proxies) == client:
                requests += 1
                models += event.concurrency_id == self.model_concurrency_id
        admitting_models = self._admitting[client, True]
        return requests + admitting_models + self._admitting[client, False], models + admitting_models

    @contextlib.contextmanager
    def admit(self, queue: queueing.Queue, concurrency_id: str | None, request: Any) -> Iterator[None]:
        """Hold a place for `request` (an event of `concurrency_id`) while it is pushed into `queue`; HTTPException
        429 when its client is over its share. Admission and the place are taken without yielding to the event
        loop, so simultaneous requests are counted one by one."""
        client = client_address(request, self.proxies)
        model = concurrency_id == self.model_concurrency_id
        requests, models = self.in_flight(queue, client)
        room = max(1, queue.max_size - 1) if queue.max_size is not None else None
        request_share = min(self.limits.max_requests_per_client, room or self.limits.max_requests_per_client)
        model_share = min(self.limits.max_model_requests_per_client, request_share)
        if model and models >= model_share:
            raise HTTPException(
                TOO_MANY_REQUESTS,
                detail=f"You already have {models} model requests queued or running (the limit is {model_share} "
                "per visitor, so that everyone is served in turn): wait for one to finish, then try again.",
            )
        if requests >= request_share:
            raise HTTPException(
                TOO_MANY_REQUESTS,
                detail=f"You already have {requests} requests queued or running (the limit is {request_share} per "
                "visitor, so that everyone is served in turn): wait for them to finish, then try again.",
            )
        self._admitting[client, model] += 1
        try:
            yield
        finally:
            self._admitting[client, model] -= 1
            if not self._admitting[client, model]:
                del self._admitting[client, model]


def install() -> None:
    """Route Gradio's `Queue.push` through the owning Blocks' `client_gate` (idempotent)."""
    original: Push = queueing.Queue.push
    if getattr(original, "__wrapped_by_client_gate__", False):
        return

    @functools.wraps(original)
    async def push(self: queueing.Queue, body: Any, request: Any, username: str | None) -> Any:
        gate = getattr(self.blocks, "client_gate", None)
        fn = self.blocks.fns.get(body.fn_index) if isinstance(body.fn_index, int) else None
        if not isinstance(gate, ClientGate) or fn is None:
            return await original(self, body, request, username)
        with gate.admit(self, fn.concurrency_id, request):
            return await original(self, body, request, username)

    push.__wrapped_by_client_gate__ = True  # type: ignore[attr-defined]
    queueing.Queue.push = push  # type: ignore[method-assign]
