"""Sending one signed delivery to a hook's URL: address check, pinned connection, retries.

httpx.AsyncClient with redirects off: a receiver's redirect is a failed delivery, never a
request to somewhere the guard did not judge. Each attempt resolves the host again, judges
every address with the egress policy and connects to the judged address itself (Host
header and TLS name kept), so DNS rebinding cannot slip an internal address in between.

Retries are tenacity's (exponential backoff with jitter) rather than a hand-made loop: on
5xx, 429, timeouts and connection errors. A 4xx or a redirect is final at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

import httpx
import tenacity
from lookout_shared.addresses import EgressPolicy
from lookout_shared.webhook_urls import RefusedUrl, parse_target, resolve_allowed

from lookout_notifier.domain import webhooks
from lookout_notifier.domain.webhooks import Circuit, Outcome

log = logging.getLogger(__name__)


class Retryable(Exception):
    """An attempt that may succeed later (5xx, 429, timeout, connection error)."""


class Final(Exception):
    """An attempt that no retry will change (4xx, redirect, refused address)."""


@dataclass
class Sender:
    policy: EgressPolicy
    client: httpx.AsyncClient
    attempts: int
    retry_initial: float
    retry_max: float
    circuit_threshold: int
    circuit_open_seconds: float
    circuits: dict[str, Circuit] = field(default_factory=dict)

    async def deliver(
        self, url: str, secret: str, event_id: uuid.UUID, webhook_id: uuid.UUID, body: str
    ) -> Outcome:
        """Send with retries; the outcome says how many attempts and the last error."""
        tried = 0
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.attempts),
            wait=tenacity.wait_exponential_jitter(
                multiplier=self.retry_initial, max=self.retry_max, jitter=self.retry_initial
            ),
            retry=tenacity.retry_if_exception_type(Retryable),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    tried += 1
                    await self._attempt(url, secret, event_id, webhook_id, body)
        except (Retryable, Final) as exc:
            return Outcome(tried, str(exc))
        return Outcome(tried, None)

    async def _attempt(
        self, url: str, secret: str, event_id: uuid.UUID, webhook_id: uuid.UUID, body: str
    ) -> None:
        try:
            target = parse_target(url)
        except RefusedUrl as exc:
            raise Final(str(exc)) from None
        circuit = self.circuits.setdefault(
            f"{target.scheme}://{target.host}:{target.port}",
            Circuit(self.circuit_threshold, self.circuit_open_seconds),
        )
        # An open circuit holds the delivery (the message stays unacked) until it may probe.
        await asyncio.sleep(circuit.wait_seconds(time.monotonic()))
        try:
            address = (await resolve_allowed(self.policy, target))[0]
        except RefusedUrl as exc:
            raise Final(str(exc)) from None
        pinned = httpx.URL(url).copy_with(host=str(address))
        headers = webhooks.headers(secret, event_id, webhook_id, int(time.time()), body)
        headers["Host"] = httpx.URL(url).netloc.decode()
        try:
            response = await self.client.post(
                pinned,
                content=body.encode(),
                headers=headers,
                extensions={"sni_hostname": target.host},
            )
        except httpx.TransportError as exc:  # timeouts, refused and reset connections
            circuit.failed(time.monotonic())
            raise Retryable(f"{type(exc).__name__} from {target.host}") from None
        if response.is_success:
            circuit.succeeded()
            return
        circuit.failed(time.monotonic())
        if response.status_code >= 500 or response.status_code == 429:
            raise Retryable(f"{target.host} answered {response.status_code}")
        if response.is_redirect:
            raise Final(
                f"{target.host} answered {response.status_code}; redirects are not followed"
            )
        raise Final(f"{target.host} answered {response.status_code}")


def client(timeout: float) -> httpx.AsyncClient:
    """No redirects, no proxies from the environment, a bounded time per attempt."""
    return httpx.AsyncClient(
        follow_redirects=False, trust_env=False, timeout=httpx.Timeout(timeout)
    )
