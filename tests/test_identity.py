"""Buyer identity tokens (HS256 and public keys) and platform API keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import replace

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from dropserver.config import PlatformSettings
from dropserver.errors import ApiError
from dropserver.identity import BuyerVerifier, PlatformAuthenticator, bearer, mint_token
from tests.helpers import SECRET, token

HS = PlatformSettings("acme", ("acme-admin-key-0000000000000001",), SECRET)


def _pem_pair(private_key: object) -> tuple[str, str]:
    private_pem = private_key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = (
        private_key.public_key()
        .public_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )
    return private_pem, public_pem


def test_hs256_token_is_verified_and_cached() -> None:
    verifier = BuyerVerifier({"acme": HS})
    raw = token("acct-1", "person-1", kyc=True, adult=False)
    buyer = verifier.verify(raw)
    assert (buyer.platform, buyer.account, buyer.person, buyer.kyc, buyer.adult) == (
        "acme", "acct-1", "person-1", True, False,
    )  # fmt: skip
    assert verifier.verify(raw) is buyer  # the cache answers the second time


@pytest.mark.parametrize(
    "make_key",
    [
        ed25519.Ed25519PrivateKey.generate,
        lambda: ec.generate_private_key(ec.SECP256R1()),
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    ],
)
def test_public_key_platforms(make_key: object) -> None:
    private_pem, public_pem = _pem_pair(make_key())  # type: ignore[operator]
    platform = PlatformSettings("pk", ("pk-admin-key-00000000000000001",), None, public_pem)
    verifier = BuyerVerifier({"pk": platform})
    raw = mint_token(platform, account="a", person="p", private_key_pem=private_pem)
    assert verifier.verify(raw).person == "p"
    # An HS256 token whose HMAC key is the public key must not pass (algorithm confusion).
    assert_refused(verifier, _hs256_with_key({"iss": "pk", "sub": "a", "pid": "p"}, public_pem))
    other_private, _ = _pem_pair(ed25519.Ed25519PrivateKey.generate())
    assert_refused(
        verifier, mint_token(platform, account="a", person="p", private_key_pem=other_private)
    )


def assert_refused(verifier: BuyerVerifier, raw: str) -> None:
    with pytest.raises(ApiError) as info:
        verifier.verify(raw)
    assert info.value.status == 401


def _hs256_with_key(claims: dict[str, object], key: str) -> str:
    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({**claims, "exp": int(time.time()) + 60}).encode())
    signature = b64(hmac.new(key.encode(), header + b"." + body, hashlib.sha256).digest())
    return (header + b"." + body + b"." + signature).decode()


def test_expired_cached_token_is_refused() -> None:
    verifier = BuyerVerifier({"acme": HS})
    raw = token("a", ttl=1)
    verifier.verify(raw)
    # Age the cached entry instead of sleeping.
    verifier._cache[raw] = replace(verifier._cache[raw], expires_at=time.time() - 60)
    with pytest.raises(ApiError, match="expired"):
        verifier.verify(raw)


@pytest.mark.parametrize(
    "claims",
    [
        {"pid": ""},
        {"pid": 5},
        {"sub": "x" * 200},
        {"kyc": "yes"},
    ],
)
def test_bad_claims(claims: dict[str, object]) -> None:
    verifier = BuyerVerifier({"acme": HS})
    base = {"iss": "acme", "sub": "a", "pid": "p", "exp": int(time.time()) + 60}
    raw = jwt.encode({**base, **claims}, SECRET, algorithm="HS256")
    with pytest.raises(ApiError) as info:
        verifier.verify(raw)
    assert info.value.status == 401


def test_platform_api_keys() -> None:
    other = PlatformSettings("other", ("other-admin-key-000000000000001",), SECRET)
    auth = PlatformAuthenticator({"acme": HS, "other": other})
    assert auth.platform_for("acme-admin-key-0000000000000001") == "acme"
    assert auth.platform_for("other-admin-key-000000000000001") == "other"
    assert auth.platform_for("acme-admin-key-0000000000000002") is None
    assert auth.platform_for("") is None


def test_bearer_parsing() -> None:
    assert bearer("Bearer abc") == "abc"
    assert bearer("bearer abc") is None
    assert bearer("Bearer ") is None
    assert bearer(None) is None
