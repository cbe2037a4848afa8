"""Login rate limits: the decision over the counters the api keeps in Redis. No I/O.

Three fixed-window counters:

- every attempt per client address (``login_ip_limit`` per ``login_ip_window_seconds``): one
  address cannot hammer the api, whichever accounts it tries;
- failures per e-mail *and* client address (``login_client_failure_limit`` per
  ``login_email_window_seconds``): guessing one account's password from one address is
  bounded, and a stranger's failures from their address never refuse the owner at theirs;
- failures per e-mail from every address (``login_email_failure_limit``, higher): past it, a
  guess spread over many addresses is slowed: an address that has already failed for the
  account in the window waits for the window to end, while an address without failures
  (the owner's, typically) still logs in.

So ten wrong passwords from one address limit that address alone, and the right password
from another address still logs in.
"""

from __future__ import annotations

from dataclasses import dataclass

from lookout_api.domain.errors import TooManyRequests


@dataclass(frozen=True)
class LoginLimits:
    per_address: int
    failures_per_address: int
    failures_per_email: int


@dataclass(frozen=True)
class LoginCounters:
    attempts: int  # from this address, this one included
    attempts_wait: int  # seconds until the address window ends
    failures: int  # for this e-mail from this address
    failures_wait: int
    email_failures: int  # for this e-mail from every address


def check(limits: LoginLimits, seen: LoginCounters) -> None:
    """Raise TooManyRequests (429, with the wait) when this attempt must not be tried."""
    if seen.attempts > limits.per_address:
        raise TooManyRequests(
            f"too many login attempts from this address; retry in {seen.attempts_wait} s",
            seen.attempts_wait,
        )
    if seen.failures >= limits.failures_per_address:
        raise TooManyRequests(
            "too many failed logins for this account from this address; "
            f"retry in {seen.failures_wait} s",
            seen.failures_wait,
        )
    if seen.failures > 0 and seen.email_failures >= limits.failures_per_email:
        raise TooManyRequests(
            "too many failed logins for this account from many addresses; this address "
            f"failed too and may retry in {seen.failures_wait} s",
            seen.failures_wait,
        )
