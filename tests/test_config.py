"""Configuration: TOML, environment overrides, CLI overrides, and clear errors."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from dropserver.cli import main as cli_main
from dropserver.config import ConfigError, WebhookTarget, load_settings

GOOD = """
[server]
port = 9000
trusted_proxies = ["10.0.0.0/8"]
[pow]
secret = "0123456789abcdef0123"
key_signature_secret = "fedcba9876543210fedc"
[limits]
person = { rate = 1.5, burst = 3 }
[[platforms]]
id = "acme"
api_keys = ["acme-admin-key-0000000000000001"]
identity_hs256_secret = "acme-identity-secret-0123456789-abcdef"
"""


HOOK_URL = "https://acme.example/hooks"
HOOK_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dropserver.toml"
    path.write_text(text)
    return path


def test_reads_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD), env={})
    assert settings.server.port == 9000
    assert settings.redis.url is None  # embedded
    assert settings.platforms["acme"].api_keys == ("acme-admin-key-0000000000000001",)
    assert settings.limits.person is not None and settings.limits.person.burst == 3
    assert settings.pow.secret == b"0123456789abcdef0123"
    assert not settings.pow.generated_secrets


def test_env_then_cli_override(tmp_path: Path) -> None:
    env = {"DROPSERVER_SERVER_PORT": "9100", "DROPSERVER_REDIS_URL": "redis://h:1/0"}
    settings = load_settings(write(tmp_path, GOOD), env=env)
    assert settings.server.port == 9100
    assert settings.redis.url == "redis://h:1/0"
    settings = load_settings(
        write(tmp_path, GOOD), env=env, overrides={"server": {"port": 9200, "host": None}}
    )
    assert settings.server.port == 9200


def test_listen_backlog(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, GOOD), env={}).server.backlog == 4096
    env = {"DROPSERVER_SERVER_BACKLOG": "512"}
    assert load_settings(write(tmp_path, GOOD), env=env).server.backlog == 512
    for bad in ("0", "70000", '"many"'):
        with pytest.raises(ConfigError, match="backlog"):
            load_settings(write(tmp_path, GOOD), env={"DROPSERVER_SERVER_BACKLOG": bad})


def test_batching_settings(tmp_path: Path) -> None:
    defaults = load_settings(write(tmp_path, GOOD), env={}).redis
    assert (defaults.max_batch, defaults.max_in_flight) == (64, 1)
    assert (defaults.wait_replicas, defaults.wait_timeout_ms) == (0, 1000)
    env = {"DROPSERVER_REDIS_WAIT_REPLICAS": "1"}
    replicated = load_settings(write(tmp_path, GOOD + "[redis]\nwait_timeout_ms = 250\n"), env=env)
    assert (replicated.redis.wait_replicas, replicated.redis.wait_timeout_ms) == (1, 250)
    env = {"DROPSERVER_REDIS_MAX_IN_FLIGHT": "4"}
    text = GOOD + "[redis]\nmax_batch = 16\n"
    settings = load_settings(write(tmp_path, text), env=env).redis
    assert (settings.max_batch, settings.max_in_flight) == (16, 4)


def test_embedded_server_binary(tmp_path: Path) -> None:
    """DROPSERVER_REDIS_SERVER, which names the embedded server's binary, is the env override
    of [redis] server (it made `dropserver serve` refuse to start as an unknown key)."""
    assert load_settings(write(tmp_path, GOOD), env={}).redis.server is None
    env = {"DROPSERVER_REDIS_SERVER": "/opt/redis/bin/redis-server"}
    assert (
        load_settings(write(tmp_path, GOOD), env=env).redis.server == "/opt/redis/bin/redis-server"
    )
    with pytest.raises(ConfigError, match="unknown key"):
        load_settings(write(tmp_path, GOOD), env={"DROPSERVER_REDIS_SERVR": "x"})


def test_cluster_setting(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, GOOD), env={}).redis.cluster is False
    env = {"DROPSERVER_REDIS_CLUSTER": "true", "DROPSERVER_REDIS_URL": "redis://node-1:7000"}
    settings = load_settings(write(tmp_path, GOOD), env=env).redis
    assert (settings.cluster, settings.url) == (True, "redis://node-1:7000")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (GOOD.replace("port = 9000", "prot = 9000"), "unknown key(s) prot"),
        (GOOD.replace("port = 9000", 'port = "x"'), "port must be an integer"),
        (GOOD.replace('["10.0.0.0/8"]', '["nonsense"]'), "trusted_proxies"),
        (GOOD.replace("rate = 1.5", "rate = -1"), "[limits]"),
        (GOOD.replace('"0123456789abcdef0123"', '"short"'), "at least 16"),
        (GOOD.replace('"fedcba9876543210fedc"', '"0123456789abcdef0123"'), "must differ"),
        (GOOD.split("[[platforms]]")[0], "at least one [[platforms]]"),
        (
            GOOD.replace(
                'identity_hs256_secret = "acme',
                'identity_public_key = "x"\nidentity_hs256_secret = "acme',
            ),
            "exactly one",
        ),
        (GOOD.replace('["acme-admin-key-0000000000000001"]', '["short"]'), "at least 16"),
        (GOOD + "[redis]\nurl = 'http://x'\n", "redis://"),
        (GOOD + "[redis]\nmax_in_flight = 0\n", "max_in_flight"),
        (GOOD + "[redis]\nmax_in_flight = 33\n", "max_in_flight"),
        (GOOD + "[redis]\nwait_replicas = -1\n", "wait_replicas"),
        (GOOD + "[redis]\nwait_timeout_ms = 0\n", "wait_timeout_ms"),
        (GOOD + "[redis]\ncluster = true\n", "needs a url"),
        (GOOD + "[redis]\ncluster = true\nurl = 'unix:///tmp/r.sock'\n", "needs a url"),
        (GOOD + "[redis]\ncluster = 'yes'\n", "cluster must be true or false"),
        ("not toml [", "not valid TOML"),
        (GOOD + f'webhook_url = "{HOOK_URL}"\n', "go together"),
        (GOOD + f'webhook_secret = "{HOOK_SECRET}"\n', "go together"),
        (GOOD + f'webhook_url = "ftp://x"\nwebhook_secret = "{HOOK_SECRET}"\n', "http"),
        (GOOD + f'webhook_url = "{HOOK_URL}"\nwebhook_secret = "{HOOK_SECRET[6:]}"\n', "whsec_"),
        (GOOD + f'webhook_url = "{HOOK_URL}"\nwebhook_secret = "whsec_c2hvcnQ="\n', "5 bytes"),
        (GOOD + f'webhook_url = "{HOOK_URL}"\nwebhook_secret = "whsec_!!"\n', "not base64"),
        (GOOD + "[webhooks]\nmax_attempts = 0\n", "max_attempts"),
        (GOOD + "[webhooks]\nretry_seconds = 10\nretry_cap_seconds = 5\n", "retry_cap"),
    ],
)
def test_errors_are_clear(tmp_path: Path, text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert needle in str(info.value)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(Path("/nonexistent/dropserver.toml"), env={})


def test_missing_pow_secrets_are_generated_and_flagged(tmp_path: Path) -> None:
    text = GOOD.replace('secret = "0123456789abcdef0123"\n', "")
    settings = load_settings(write(tmp_path, text), env={})
    assert settings.pow.generated_secrets
    assert len(settings.pow.secret) == 32


def test_the_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "dropserver.example.toml"
    settings = load_settings(example, env={})
    assert "acme" in settings.platforms


def test_a_platform_webhook_and_the_delivery_settings(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, GOOD), env={}).platforms["acme"].webhook is None
    text = GOOD + f'webhook_url = "{HOOK_URL}"\nwebhook_secret = "{HOOK_SECRET}"\n'
    text += "[webhooks]\nmax_attempts = 3\n"
    settings = load_settings(
        write(tmp_path, text), env={"DROPSERVER_WEBHOOKS_TIMEOUT_SECONDS": "2"}
    )
    assert settings.platforms["acme"].webhook == WebhookTarget(HOOK_URL, HOOK_SECRET)
    assert HOOK_SECRET not in repr(settings.platforms["acme"])  # kept out of logs
    assert (settings.webhooks.max_attempts, settings.webhooks.timeout_seconds) == (3, 2.0)


def test_webhook_secret_makes_a_valid_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["webhook-secret"]) == 0
    secret = capsys.readouterr().out.strip()
    text = GOOD + f'webhook_url = "{HOOK_URL}"\nwebhook_secret = "{secret}"\n'
    webhook = load_settings(write(tmp_path, text), env={}).platforms["acme"].webhook
    assert webhook is not None and webhook.secret == secret
    assert cli_main(["webhook-secret"]) == 0
    assert capsys.readouterr().out.strip() != secret
