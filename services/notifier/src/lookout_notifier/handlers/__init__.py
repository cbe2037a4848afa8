"""One module per thing that happens: an event from the broker (events.py), a frame from a
client (client_frames.py). Handlers see the outside world through ports.py only."""

from lookout_notifier.handlers.client_frames import (
    handle_client_text,
    join,
    may_subscribe,
    reauthenticate,
    subscribe,
    unsubscribe,
)
from lookout_notifier.handlers.events import handle_event

__all__ = [
    "handle_client_text",
    "handle_event",
    "join",
    "may_subscribe",
    "reauthenticate",
    "subscribe",
    "unsubscribe",
]
