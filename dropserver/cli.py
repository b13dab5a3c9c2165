"""The ``dropserver`` command: serve, demo, token, webhook-secret, verify-draw."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from dropserver.config import ConfigError, Settings, load_settings

log = logging.getLogger("dropserver")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code: int = args.run(args)
        return code
    except ConfigError as exc:
        print(f"dropserver: configuration error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dropserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--redis-url", help="use this Redis instead of an embedded one")
    serve.set_defaults(run=_serve)

    demo = sub.add_parser("demo", help="a demo drop on an embedded Redis, with a simulated crowd")
    demo.add_argument("--supply", type=int, default=100)
    demo.add_argument("--persons", type=int, default=400)
    demo.add_argument("--accounts", type=int, default=2, help="accounts per person")
    demo.set_defaults(run=_demo)

    token = sub.add_parser("token", help="mint a test identity token for a configured platform")
    token.add_argument("--config", type=Path, required=True)
    token.add_argument("--platform", help="platform id (default: the first configured)")
    token.add_argument("--account", required=True, help="the account id (sub)")
    token.add_argument("--person", help="the person id (pid); default: the account id")
    token.add_argument("--no-kyc", action="store_true", help="a buyer who is not KYC-verified")
    token.add_argument("--minor", action="store_true", help="a buyer who is not an adult")
    token.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    token.add_argument("--private-key", type=Path, help="PEM, for platforms with a public key")
    token.set_defaults(run=_token)

    webhook = sub.add_parser("webhook-secret", help="make a random webhook signing secret")
    webhook.set_defaults(run=_webhook_secret)

    verify = sub.add_parser("verify-draw", help="recompute a lottery draw from its published files")
    verify.add_argument("proof", type=Path)
    verify.add_argument("entries", type=Path)
    verify.set_defaults(run=_verify_draw)
    return parser


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config,
        overrides={
            "server": {"host": args.host, "port": args.port},
            "redis": {"url": args.redis_url},
        },
    )
    from dropserver.server import serve

    serve(settings)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dropserver.demo import run_demo

    with tempfile.TemporaryDirectory(prefix="dropserver-demo-") as tmp:
        return asyncio.run(
            run_demo(Path(tmp), supply=args.supply, persons=args.persons, accounts=args.accounts)
        )


def _token(args: argparse.Namespace) -> int:
    from dropserver.identity import mint_token

    settings: Settings = load_settings(args.config)
    platform_id = args.platform or next(iter(settings.platforms))
    platform = settings.platforms.get(platform_id)
    if platform is None:
        raise ConfigError(f"no platform {platform_id!r} in {args.config}")
    print(
        mint_token(
            platform,
            account=args.account,
            person=args.person or args.account,
            kyc=not args.no_kyc,
            adult=not args.minor,
            ttl_seconds=args.ttl,
            private_key_pem=args.private_key.read_text() if args.private_key else None,
        )
    )
    return 0


def _webhook_secret(args: argparse.Namespace) -> int:
    """A Standard Webhooks secret for a platform's ``webhook_secret``."""
    from dropserver.config import new_webhook_secret

    print(new_webhook_secret())
    return 0


def _verify_draw(args: argparse.Namespace) -> int:
    from dropserver.lottery.verify import main as verify_main

    return verify_main([str(args.proof), str(args.entries)])


def with_redis_url(settings: Settings, url: str) -> Settings:
    return replace(settings, redis=replace(settings.redis, url=url))
