"""Who is calling: buyers by a platform-signed JWT, platforms by an API key.

Buyer tokens are verified with PyJWT against the key of the platform named in ``iss``. A verified
token is cached until it expires: a buyer sends the same token on every call of a drop (and a bot
sends it thousands of times), so the signature check and claim parsing run once per token, not
once per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from jwt.algorithms import get_default_algorithms

from dropserver.config import PlatformSettings
from dropserver.errors import unauthorized

_ASYMMETRIC = ["EdDSA", "ES256", "RS256"]
_LEEWAY_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Buyer:
    platform: str  # iss
    account: str  # sub
    person: str  # pid: all accounts of one verified person share it
    kyc: bool
    adult: bool
    expires_at: float


class BuyerVerifier:
    def __init__(self, platforms: Mapping[str, PlatformSettings], cache_size: int = 200_000):
        self._keys: dict[str, tuple[Any, list[str]]] = {}
        for platform in platforms.values():
            if platform.identity_hs256_secret is not None:
                self._keys[platform.id] = (platform.identity_hs256_secret, ["HS256"])
            else:
                assert platform.identity_public_key is not None
                key, algorithm = _load_public_key(platform.identity_public_key)
                self._keys[platform.id] = (key, [algorithm])
        self._cache: OrderedDict[str, Buyer] = OrderedDict()
        self._cache_size = cache_size

    def verify(self, token: str) -> Buyer:
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if cached.expires_at + _LEEWAY_SECONDS > now:
                return cached
            del self._cache[token]
            raise unauthorized("identity token expired")
        buyer = self._verify_signature(token)
        self._cache[token] = buyer
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return buyer

    def _verify_signature(self, token: str) -> Buyer:
        issuer = _issuer_hint(token)
        entry = self._keys.get(issuer) if isinstance(issuer, str) else None
        if entry is None or not isinstance(issuer, str):
            raise unauthorized("identity token from an unknown platform")
        key, algorithms = entry
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                issuer=issuer,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "pid", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise unauthorized("identity token expired") from exc
        except jwt.PyJWTError as exc:
            raise unauthorized(f"identity token rejected: {exc}") from exc
        sub, pid, kyc, adult = (claims.get(k) for k in ("sub", "pid", "kyc", "adult"))
        if not (isinstance(sub, str) and sub and isinstance(pid, str) and pid):
            raise unauthorized("identity token: sub and pid must be non-empty strings")
        if len(sub) > 128 or len(pid) > 128:
            raise unauthorized("identity token: sub and pid must be at most 128 characters")
        if not isinstance(kyc, bool | None) or not isinstance(adult, bool | None):
            raise unauthorized("identity token: kyc and adult must be booleans")
        return Buyer(issuer, sub, pid, bool(kyc), bool(adult), float(claims["exp"]))


def _issuer_hint(token: str) -> str | None:
    """The ``iss`` claim, read without verifying anything, only to pick the key to verify with.

    PyJWT's own unverified decode costs about as much as a verified one; this reads one JSON
    segment. Nothing is trusted from it: PyJWT then verifies the signature and ``iss``.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        segment = parts[1]
        claims = orjson.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def _load_public_key(pem: str) -> tuple[Any, str]:
    """The key and the one algorithm it may verify (never let the token's header choose)."""
    for name in _ASYMMETRIC:
        try:
            return get_default_algorithms()[name].prepare_key(pem), name
        except (jwt.InvalidKeyError, ValueError, TypeError):
            continue
    raise ValueError("identity_public_key is not an Ed25519, P-256 or RSA public key")


class PlatformAuthenticator:
    """Maps an API key to its platform, comparing in constant time.

    Keys are compared as SHA-256 digests so the comparison time depends on neither the key's
    length nor how much of it an attacker guessed.
    """

    def __init__(self, platforms: Mapping[str, PlatformSettings]) -> None:
        self._digests = [
            (hashlib.sha256(key.encode()).digest(), platform.id)
            for platform in platforms.values()
            for key in platform.api_keys
        ]

    def platform_for(self, api_key: str) -> str | None:
        digest = hashlib.sha256(api_key.encode()).digest()
        found = None
        for stored, platform in self._digests:
            if hmac.compare_digest(stored, digest):
                found = platform
        return found


def bearer(authorization: str | None) -> str | None:
    if not authorization or not authorization.startswith("Bearer "):
        return None
    token = authorization[7:].strip()
    return token or None


def mint_token(
    platform: PlatformSettings,
    *,
    account: str,
    person: str,
    kyc: bool = True,
    adult: bool = True,
    ttl_seconds: int = 3600,
    private_key_pem: str | None = None,
) -> str:
    """A buyer identity token as a platform would sign it (for tests, demos and load tests)."""
    claims = {
        "iss": platform.id,
        "sub": account,
        "pid": person,
        "kyc": kyc,
        "adult": adult,
        "exp": int(time.time()) + ttl_seconds,
    }
    if platform.identity_hs256_secret is not None:
        return jwt.encode(claims, platform.identity_hs256_secret, algorithm="HS256")
    if private_key_pem is None:
        raise ValueError(f"platform {platform.id} verifies with a public key: pass its private key")
    return jwt.encode(claims, private_key_pem, algorithm=_algorithm_for(private_key_pem))


def _algorithm_for(private_key_pem: str) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(private_key_pem.encode(), password=None)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey):
        return "RS256"
    raise ValueError("unsupported private key type")
