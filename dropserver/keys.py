"""Every Redis key name dropserver uses, in one place.

All keys of one drop share the hash tag ``{drop:<id>}`` so that a script touching them runs
unchanged on Redis Cluster (one slot per drop). Scripts get these names through ``KEYS``; they
never build key names themselves.
"""

from __future__ import annotations

from dataclasses import dataclass


def drop_tag(drop_id: str) -> str:
    return "{drop:" + drop_id + "}"


@dataclass(frozen=True, slots=True)
class DropKeys:
    """The keys of one drop. Built once per drop id and cached by the caller."""

    tag: str
    meta: str  # hash: the drop's configuration and status
    counts: str  # hash: next_serial, held, confirmed, entries, rejections by reason
    free_serials: str  # list: serials returned to stock by expiry or cancellation
    persons: str  # hash: pid -> units held or confirmed by that person
    orders: str  # hash: order_id -> order JSON
    person_orders: str  # hash: pid -> space-separated order ids (for /me)
    holds: str  # sorted set: order_id scored by hold expiry (ms)
    idempotency: str  # hash: "<pid>:<key>" -> first reply
    demand: str  # hash: live-demand counters for adaptive difficulty
    entries: str  # hash: pid -> "entry_id receipt sub early" (lottery, fair-start arrivals)
    late: str  # list: "pid sub" of fair-start arrivals after the window, before the draw
    draw: str  # hash: draw state and result; 'next' = draw-order index of the next candidate
    draw_order: str  # list: "receipt pid" in draw order, once drawn
    ranks: str  # hash: pid -> place in the draw order
    draw_lock: str  # string: token of the process running the draw
    draw_order_tmp: str  # list: the draw order being written, renamed at commit
    ranks_tmp: str  # hash: the ranks being written, renamed at commit
    events: str  # stream: events of this drop for the platform

    def limiter(self, kind: str, value: str) -> str:
        """A GCRA limiter of this drop (string key holding a TAT, with its own expiry)."""
        return limiter_key(self.tag, kind, value)

    def limiter_prefix(self, kind: str) -> str:
        """What every limiter key of one kind starts with: ``limiter(kind, v)`` is this + v
        (for the hot path, which appends the value without checking the kind again)."""
        return limiter_key(self.tag, kind, "-")[:-1]

    def pow_ticket(self, challenge_id: str) -> str:
        """Marks a proof-of-work challenge as used; expires with the challenge."""
        return f"{self.tag}:pow:{challenge_id}"


LIMITER_KINDS = ("person", "ip", "device")

# The consumer group of every drop's event stream through which the server processes deliver
# the events to the platform's webhook (dropserver.webhooks). A platform reading the stream
# itself uses a group of its own.
WEBHOOK_GROUP = "dropserver-webhooks"


def limiter_key(drop_tag: str, kind: str, value: str) -> str:
    """Key of one limiter: ``{drop:<id>}:rl:<kind>:<value>``, in the drop's slot.

    One string key per limiter, not a field of one hash, because each limiter needs its own
    expiry and Redis 6.2 has no per-field TTL.
    """
    if not (drop_tag.startswith("{") and drop_tag.endswith("}") and len(drop_tag) > 2):
        raise ValueError(f"drop_tag must be a hash tag like {{drop:<id>}}, got {drop_tag!r}")
    if kind not in LIMITER_KINDS:
        raise ValueError(f"unknown rate limit kind {kind!r}")
    if not value:
        raise ValueError("rate limit value must not be empty")
    return f"{drop_tag}:rl:{kind}:{value}"


def drop_keys(drop_id: str) -> DropKeys:
    tag = drop_tag(drop_id)
    return DropKeys(
        tag=tag,
        meta=f"{tag}:meta",
        counts=f"{tag}:counts",
        free_serials=f"{tag}:free",
        persons=f"{tag}:persons",
        orders=f"{tag}:orders",
        person_orders=f"{tag}:porders",
        holds=f"{tag}:holds",
        idempotency=f"{tag}:idem",
        demand=f"{tag}:demand",
        entries=f"{tag}:entries",
        late=f"{tag}:late",
        draw=f"{tag}:draw",
        draw_order=f"{tag}:draworder",
        ranks=f"{tag}:ranks",
        draw_lock=f"{tag}:drawlock",
        draw_order_tmp=f"{tag}:draworder:tmp",
        ranks_tmp=f"{tag}:ranks:tmp",
        events=f"{tag}:events",
    )


def platform_drops(platform_id: str) -> str:
    """Set of the drop ids a platform created (admin listing; not on any hot path)."""
    return "{platform:" + platform_id + "}:drops"
