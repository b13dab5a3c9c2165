"""Drops: what a platform may create (validated), and how a drop is stored and shown."""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import orjson

from dropserver.errors import invalid
from dropserver.pow import Difficulty
from dropserver.ratelimit import RateLimits
from dropserver.timefmt import format_ms, parse_rfc3339

Mode = Literal["fcfs", "lottery"]
DROP_ID = re.compile(r"[a-z0-9-]{1,64}")
MAX_SUPPLY = 10_000_000

_FIELDS = {
    "id", "title", "supply", "mode", "opens_at", "closes_at", "per_person_limit", "hold_seconds",
    "claim_seconds", "fair_start_seconds", "require_kyc", "adult_only", "pow", "rate_limits",
    "beacon",
}  # fmt: skip
_POW_FIELDS = {"algorithm", "cost", "counter_max", "adaptive"}
DEFAULT_POW = {"algorithm": "PBKDF2/SHA-256", "cost": 5000, "counter_max": 10000, "adaptive": True}


@dataclass(frozen=True, slots=True)
class PowPolicy:
    difficulty: Difficulty
    adaptive: bool

    def to_json(self) -> dict[str, Any]:
        d = self.difficulty
        return {
            "algorithm": d.algorithm,
            "cost": d.cost,
            "counter_max": d.counter_max,
            "adaptive": self.adaptive,
        }


@dataclass(frozen=True, slots=True)
class Drop:
    """A drop's configuration. Immutable once created, except ``closed_at``."""

    id: str
    platform: str
    title: str
    supply: int
    mode: Mode
    opens_at: int  # ms
    closes_at: int  # ms, 0 = no end (fcfs only)
    per_person_limit: int = 1
    hold_seconds: int = 300
    claim_seconds: int = 900
    fair_start_seconds: int = 0
    require_kyc: bool = True
    adult_only: bool = False
    pow: PowPolicy | None = None
    rate_limits: RateLimits = field(default_factory=RateLimits)
    beacon: str | None = None
    created_at: int = 0
    closed_at: int = 0
    commitment: str | None = None

    @property
    def has_draw(self) -> bool:
        """Lottery drops and fair-start FCFS drops serve a drawn queue."""
        return self.mode == "lottery" or self.fair_start_seconds > 0

    @property
    def draw_due_at(self) -> int:
        """When the draw may run (ms): the lottery's close, or the end of the fair-start window
        (an admin close of a lottery makes it due earlier; the draw script checks that)."""
        if self.mode == "lottery":
            return self.closes_at
        return self.opens_at + self.fair_start_seconds * 1000

    @property
    def hold_ms(self) -> int:
        return (self.claim_seconds if self.mode == "lottery" else self.hold_seconds) * 1000

    def status(self, now_ms: int) -> str:
        if self.closed_at or (self.closes_at and now_ms >= self.closes_at):
            return "closed"
        if now_ms < self.opens_at:
            return "scheduled"
        return "open"

    def to_meta(self) -> dict[str, str | int]:
        """The meta hash: numbers the Lua scripts read, plus the full spec as JSON."""
        meta: dict[str, str | int] = {
            "id": self.id,
            "platform": self.platform,
            "mode": self.mode,
            "supply": self.supply,
            "opens_at": self.opens_at,
            "closes_at": self.closes_at,
            "per_person_limit": self.per_person_limit,
            "hold_ms": self.hold_ms,
            "fair_start_ms": self.fair_start_seconds * 1000,
            "spec": orjson.dumps(self.spec_json()).decode(),
        }
        if self.commitment:
            meta["commitment"] = self.commitment
        return meta

    def spec_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "supply": self.supply,
            "mode": self.mode,
            "opens_at": format_ms(self.opens_at),
            "closes_at": format_ms(self.closes_at),
            "per_person_limit": self.per_person_limit,
            "hold_seconds": self.hold_seconds,
            "claim_seconds": self.claim_seconds,
            "fair_start_seconds": self.fair_start_seconds,
            "require_kyc": self.require_kyc,
            "adult_only": self.adult_only,
            "pow": self.pow.to_json() if self.pow else None,
            "rate_limits": self.rate_limits.to_json(),
            "beacon": self.beacon,
        }

    @classmethod
    def from_meta(cls, meta: Mapping[bytes, bytes]) -> Drop:
        spec = orjson.loads(meta[b"spec"])
        drop = parse_drop_spec(spec, platform=meta[b"platform"].decode(), generated_id=spec["id"])
        return replace(
            drop,
            created_at=int(meta.get(b"created_at", b"0")),
            closed_at=int(meta.get(b"closed_at", b"0")),
            commitment=meta[b"commitment"].decode() if b"commitment" in meta else None,
        )


def parse_drop_spec(body: Any, *, platform: str, generated_id: str | None = None) -> Drop:
    """Validate a create-drop body. Every problem is a 400 with a message naming the field."""
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise invalid(f"unknown field(s): {', '.join(unknown)}")
    drop_id = body.get("id", generated_id or "d-" + secrets.token_hex(8))
    if not isinstance(drop_id, str) or not DROP_ID.fullmatch(drop_id):
        raise invalid("id must match [a-z0-9-]{1,64}")
    title = body.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise invalid("title must be a non-empty string of at most 200 characters")
    mode = body.get("mode")
    if mode not in ("fcfs", "lottery"):
        raise invalid('mode must be "fcfs" or "lottery"')
    supply = _int(body, "supply", None, 1, MAX_SUPPLY)
    opens_at = _time(body, "opens_at", required=True)
    closes_at = _time(body, "closes_at", required=mode == "lottery")
    if closes_at and closes_at <= opens_at:
        raise invalid("closes_at must be after opens_at")
    per_person_limit = _int(body, "per_person_limit", 1, 1, 1000)
    if mode == "lottery" and per_person_limit != 1:
        raise invalid("a lottery gives one entry, and so at most one unit, per person")
    fair_start = _int(body, "fair_start_seconds", 0, 0, 3600)
    if mode == "lottery" and fair_start:
        raise invalid("fair_start_seconds applies to fcfs drops only")
    beacon = body.get("beacon")
    if beacon is not None and (not isinstance(beacon, str) or not 0 < len(beacon) <= 256):
        raise invalid("beacon must be a string of 1 to 256 characters")
    try:
        rate_limits = RateLimits.from_json(body.get("rate_limits") or {})
    except ValueError as exc:
        raise invalid(f"rate_limits: {exc}") from exc
    return Drop(
        id=drop_id,
        platform=platform,
        title=title.strip(),
        supply=supply,
        mode=mode,
        opens_at=opens_at,
        closes_at=closes_at,
        per_person_limit=per_person_limit,
        hold_seconds=_int(body, "hold_seconds", 300, 0, 86_400),
        claim_seconds=_int(body, "claim_seconds", 900, 1, 7 * 86_400),
        fair_start_seconds=fair_start,
        require_kyc=_bool(body, "require_kyc", True),
        adult_only=_bool(body, "adult_only", False),
        pow=_pow(body.get("pow", DEFAULT_POW)),
        rate_limits=rate_limits,
        beacon=beacon,
    )


def _int(body: Mapping[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"{key} must be an integer in [{low}, {high}]")
    return value


def _bool(body: Mapping[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise invalid(f"{key} must be true or false")
    return value


def _time(body: Mapping[str, Any], key: str, *, required: bool) -> int:
    value = body.get(key)
    if value is None:
        if required:
            raise invalid(f"{key} is required")
        return 0
    try:
        return parse_rfc3339(value)
    except (TypeError, ValueError) as exc:
        raise invalid(f"{key}: {exc}") from exc


def _pow(value: Any) -> PowPolicy | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid("pow must be an object or null")
    unknown = sorted(set(value) - _POW_FIELDS)
    if unknown:
        raise invalid(f"pow: unknown field(s): {', '.join(unknown)}")
    merged = {**DEFAULT_POW, **value}
    if not isinstance(merged["adaptive"], bool):
        raise invalid("pow.adaptive must be true or false")
    try:
        difficulty = Difficulty.from_config(
            {k: merged[k] for k in ("algorithm", "cost", "counter_max")}
        )
    except ValueError as exc:
        raise invalid(f"pow: {exc}") from exc
    return PowPolicy(difficulty, merged["adaptive"])
