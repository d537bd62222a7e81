"""Who did it: the actor each audit row names, carried from the request that asked for the change to the row.

An actor is one of:

- ``kartud``: the daemon's own transitions (the press, start-up recovery, timers, erasure);
- ``key:<16 hex digits>``: a signed request, named by the trusted key that verified it
  (:func:`kartud.rules.signing.key_id`);
- ``mqtt`` or ``mqtt:<client>``: an unsigned MQTT request; ``<client>`` is what the sender says in
  its ``client`` user property (MQTT 5) and is not checked: the broker knows who sent a message,
  the box does not;
- ``unix:<user>`` (or ``unix:uid:<n>`` for a uid without a name): kartuctl on the control socket, the
  user the kernel reports for the other end (``SO_PEERCRED``).

The transport sets the actor for the work of one request (:func:`acting_as`); the store reads it when
it writes an audit row, inside the hashed content. Work on the store's thread sees it because the
daemon runs each store call in a copy of the caller's context.

>>> with acting_as("unix:operator1"):
...     current_actor()
'unix:operator1'
>>> current_actor(), actor_problem("mqtt:office-1"), actor_problem("someone")
('kartud', None, 'is not kartud, key:<16 hex>, mqtt[:<client>] or unix:<user>')
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Iterator

DAEMON = "kartud"
CLIENT_NAME = re.compile(r"[A-Za-z0-9._:@-]{1,64}", re.ASCII)
ACTOR_FORM = re.compile(r"kartud|key:[0-9a-f]{16}|mqtt(:[A-Za-z0-9._:@-]{1,64})?|unix:[^\s\x00-\x1f]{1,64}", re.ASCII)

_actor: ContextVar[str] = ContextVar("kartud_actor", default=DAEMON)


def current_actor() -> str:
    """The actor of the work in progress: ``kartud`` unless a request's transport said otherwise."""
    return _actor.get()


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Within the block (and the store calls it makes), changes are done by ``actor``."""
    token = _actor.set(actor)
    try:
        yield actor
    finally:
        _actor.reset(token)


def mqtt_actor(claimed: str | None) -> str:
    """The actor of an unsigned MQTT request: ``mqtt``, with the client name it claims when that is a plain id.

    >>> mqtt_actor("office-1"), mqtt_actor(None), mqtt_actor("Budi Santoso")
    ('mqtt:office-1', 'mqtt', 'mqtt')
    """
    return f"mqtt:{claimed}" if isinstance(claimed, str) and CLIENT_NAME.fullmatch(claimed) else "mqtt"


def actor_problem(actor: Any) -> str | None:
    """What keeps ``actor`` (read back from an audit row) from naming someone, or None."""
    if isinstance(actor, str) and ACTOR_FORM.fullmatch(actor):
        return None
    return "is not kartud, key:<16 hex>, mqtt[:<client>] or unix:<user>"
