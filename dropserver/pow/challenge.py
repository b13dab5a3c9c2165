"""Issue and verify ALTCHA v2 challenges (deterministic mode with key signature).

Issuing (:func:`issue_challenge_json`; :class:`BoundIssuer` on the request path) costs one
HMAC: the KDF, the ``keySignature`` HMAC and the buyer-independent part of the canonical JSON
were done earlier, off the request path, when the pool's workers derived the puzzle
(:func:`derive_puzzle`). Verifying a solution (:func:`verify_payload`) costs two HMACs on the
fast path: ``keySignature = HMAC(key_signature_secret, key)`` lets us check the submitted key
without re-deriving it.

Order of checks in :func:`verify_payload`, and why (every failure is ``pow_invalid`` unless
marked otherwise):

1. Size cap (before decoding anything), base64, JSON, the widget's test mode (``"test"``
   key), then the structure: exactly the expected keys at each level, and strict types for the
   fields the signature does not cover (``signature``, ``counter``, ``derivedKey``, ``time``).
   Pure parsing: it needs no secret and the client cannot make it expensive.
2. The challenge signature: HMAC over the canonical JSON of ``parameters``, compared in
   constant time. Nothing the client wrote in ``parameters`` is trusted before this point, and
   any change to any parameter (a type, a digit, an added or removed key) fails here.
3. Strict shape of the signed parameters the decision uses (the slow path also checks those it
   needs to re-derive). A challenge of ours always passes; this guards against challenges
   signed by another issuer or a misconfiguration, never against forgery (step 2 did that).
4. ``expiresAt`` missing or reached: ``pow_expired``. Checked *after* the signature so that
   ``pow_expired`` always means "a genuine challenge of ours that timed out" (the client
   should fetch a new one): a forged challenge never learns more than "invalid", and the
   expiry metric is not inflated by forgeries.
5. Policy: algorithm allowed now, challenge id present.
6. The solution: fast path (``keySignature``: one HMAC) or slow path (re-derive: one KDF).
   Both require the key to start with the signed ``keyPrefix``.

Not done here, by design: replay (the caller consumes ``Ticket.challenge_id`` atomically in
Redis, with a TTL until ``Ticket.expires_at``) and binding (the caller compares
``Ticket.data`` with the request, see :func:`check_binding`).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias
from urllib.parse import quote

import orjson

from dropserver.ids import random_token128
from dropserver.pow.canonical import is_plain_key
from dropserver.pow.difficulty import Difficulty, PreDerived, pre_derive
from dropserver.pow.kdf import ALGORITHMS, SCRYPT, derive_key, password

PowCode = Literal["pow_invalid", "pow_expired"]
POW_INVALID: Final = "pow_invalid"
POW_EXPIRED: Final = "pow_expired"

#: Keys of the signed ``data`` object that dropserver uses.
DATA_DROP: Final = "drop"
DATA_PID: Final = "pid"
DATA_ACTION: Final = "act"
DATA_IP_PREFIX: Final = "ipp"
DATA_CHALLENGE_ID: Final = "cid"

#: Refuse longer payloads before decoding anything. A real payload is about 1 KiB of base64.
MAX_PAYLOAD_CHARS: Final = 4096

_UINT32_MAX: Final = 0xFFFF_FFFF
_MAX_INT: Final = 2**53  # JS safe integers: anything bigger would not round-trip the widget.
_MIN_KEY_LENGTH: Final = 16
_MAX_KEY_LENGTH: Final = 64
_MAX_NONCE_HEX: Final = 128
_SIGNATURE_HEX: Final = 64  # HMAC-SHA-256

_REQUIRED_PARAMS: Final = frozenset(
    {"algorithm", "nonce", "salt", "cost", "keyLength", "keyPrefix"}
)
_ALLOWED_PARAMS: Final = _REQUIRED_PARAMS | {
    "keySignature",
    "memoryCost",
    "parallelism",
    "expiresAt",
    "data",
}
_CHALLENGE_KEYS: Final = frozenset({"parameters", "signature"})
_PAYLOAD_KEYS: Final = frozenset({"challenge", "solution"})
_SOLUTION_KEYS: Final = frozenset({"counter", "derivedKey", "time"})
_REQUIRED_SOLUTION: Final = frozenset({"counter", "derivedKey"})
_HEX_RE: Final = re.compile(r"[0-9a-f]+")
_SIGNATURE_RE: Final = re.compile(f"[0-9a-f]{{{_SIGNATURE_HEX}}}")


class PowError(Exception):
    """A refused proof-of-work payload. ``code`` goes to the client; ``message`` to logs."""

    def __init__(self, code: PowCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code: PowCode = code
        self.message = message


# Not frozen: built for every purchase or entry with a ticket, and a frozen dataclass's __init__
# costs twice as much (0.54 us here). Nothing assigns to it.
@dataclass(slots=True)
class Ticket:
    """A verified solution: what the challenge was bound to, and until when it is valid."""

    data: dict[str, str]
    expires_at: int
    challenge_id: str


def new_challenge_id() -> str:
    """A random challenge id for ``data["cid"]``: the replay key the caller burns in Redis
    (128 bits from the OS CSPRNG, read in blocks: one system call per id showed in profiles)."""
    return random_token128()


# Printable ASCII but '%': what a pid that needs encoding keeps as it is.
_PID_SAFE: Final = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "%")


def binding_pid(pid: str) -> str:
    """The person id as a challenge's ``data`` carries it: in ASCII, which the widget needs
    (it base64-encodes the payload with ``btoa``), whatever the platform's pids are made of.

    A pid in ASCII without '%' is itself; any other is percent-encoded as UTF-8, which always
    leaves a '%' in it, so no two pids share a form (``"%E5%BC%A0"`` is not ``"张"``).
    """
    if pid.isascii() and "%" not in pid:
        return pid
    return quote(pid, safe=_PID_SAFE)


def binding_data(
    *, drop_id: str, pid: str, action: str, ip_prefix: str, cid: str | None = None
) -> dict[str, str]:
    """The signed ``data`` of a dropserver challenge (see :func:`check_binding`)."""
    return {
        DATA_DROP: drop_id,
        DATA_PID: binding_pid(pid),
        DATA_ACTION: action,
        DATA_IP_PREFIX: ip_prefix,
        DATA_CHALLENGE_ID: new_challenge_id() if cid is None else cid,
    }


def check_binding(ticket: Ticket, *, drop_id: str, pid: str, action: str, ip_prefix: str) -> None:
    """Refuse a ticket solved for another drop, person, action or network.

    Raises ``PowError("pow_invalid", ...)`` naming the first mismatched field (never its
    value: the message may reach logs).
    """
    data = ticket.data
    for key, expected in (
        (DATA_DROP, drop_id),
        (DATA_PID, binding_pid(pid)),
        (DATA_ACTION, action),
        (DATA_IP_PREFIX, ip_prefix),
    ):
        if data.get(key) != expected:
            raise PowError(POW_INVALID, f"challenge was issued for another {key!r}")


# Keyed HMAC states by secret. Copying a keyed state skips re-hashing the padded key on
# every call (about half the cost of an HMAC of a short message). Secrets rarely change;
# the cap only guards against a caller that generates them per call. The secrets already
# live in process memory (config), so keeping them as dict keys exposes nothing new.
_KEYED: dict[bytes, hmac.HMAC] = {}
_KEYED_MAX: Final = 16


def _hmac_sha256_hex(secret: bytes, message: bytes) -> str:
    keyed = _KEYED.get(secret)
    if keyed is None:
        if len(_KEYED) >= _KEYED_MAX:
            _KEYED.clear()
        keyed = _KEYED[secret] = hmac.new(secret, digestmod=hashlib.sha256)
    mac = keyed.copy()
    mac.update(message)
    return mac.hexdigest()


#: A pre-derived puzzle made ready to issue, off the request path: ``(head, tail,
#: challenge_id)``. The signed parameters that do not depend on the buyer (``keySignature``'s
#: HMAC among them) are already canonical JSON, in two halves: issuing fills in ``data`` and
#: ``expiresAt`` between them and signs,
#: canonical JSON == ``head + data + b',"expiresAt":N,' + tail`` (keys are sorted and nothing
#: sorts between ``data`` and ``expiresAt``). ``head`` is '{"algorithm":...,"cost":...,"data":'
#: and ``tail`` '"keyLength":...,"salt":"..."}'. The challenge id it will be issued with is
#: drawn by the pool's workers with the rest: a puzzle is issued once, so its id is as single
#: as a fresh one.
#:
#: A plain tuple of bytes and a str, on purpose: the garbage collector stops tracking an exact
#: tuple that holds only such atoms (not a NamedTuple's, nor an object's), so a pool stocked
#: for a big opening adds nothing to its full passes. As objects, 500,000 puzzles made every
#: full collection stop the event loop for two thirds of a second (bench/gc_pause.py).
Puzzle: TypeAlias = tuple[bytes, bytes, str]


_SPLIT: Final = b'"data":{},"expiresAt":0,'


def prepare_puzzle(pre: PreDerived, key_signature_secret: bytes) -> Puzzle:
    """Everything of a challenge that the buyer does not change, signed and serialised."""
    if not key_signature_secret:
        raise ValueError("key_signature_secret must not be empty")
    difficulty = pre.difficulty
    key_length = difficulty.key_length
    fixed: dict[str, object] = {
        "algorithm": difficulty.algorithm,
        "nonce": pre.nonce.hex(),
        "salt": pre.salt.hex(),
        "cost": difficulty.cost,
        "keyLength": key_length,
        "keyPrefix": pre.key[: key_length // 2].hex(),
        "keySignature": _hmac_sha256_hex(key_signature_secret, pre.key),
        "data": {},
        "expiresAt": 0,
    }
    if difficulty.algorithm == SCRYPT:
        # Always explicit: the client must not fall back on its own defaults.
        fixed["memoryCost"] = difficulty.scrypt_r
        fixed["parallelism"] = difficulty.scrypt_p
    # Plain ASCII keys, strings and small ints: orjson's sorted output is the canonical JSON.
    canonical = orjson.dumps(fixed, option=orjson.OPT_SORT_KEYS)
    head, tail = canonical.split(_SPLIT)
    return (head + b'"data":', tail, new_challenge_id())


def issue_challenge_json(
    puzzle: Puzzle,
    *,
    hmac_secret: bytes,
    key_signature_secret: bytes,
    expires_at: int,
    data: Mapping[str, str],
) -> bytes:
    """The ALTCHA v2 challenge, as the JSON bytes a response carries:
    ``{"parameters": {...}, "signature": HMAC(hmac_secret, canonical JSON of parameters)}``.

    ``keyPrefix`` is the first half of the key (deterministic mode) and ``keySignature`` lets
    :func:`verify_payload` check a solution without a KDF. ``data`` must map ASCII strings to
    ASCII strings (the widget base64-encodes with ``btoa``, which fails on other text).
    Each puzzle must be issued once only: two challenges with the same answer would let one
    solution pass twice (with different challenge ids). ``key_signature_secret`` is the one
    the puzzle was prepared with (checked here to differ from ``hmac_secret``). The parameters
    are written once, in canonical form, and the response embeds those very bytes.
    """
    _check_secrets(hmac_secret, key_signature_secret)
    _check_expiry(expires_at)
    for key, value in data.items():
        if not (type(key) is str and type(value) is str and key.isascii() and value.isascii()):
            raise ValueError(f"challenge data must map ASCII str to ASCII str: {key!r}")
        if not is_plain_key(key):
            raise ValueError(f"challenge data key {key!r} must not be all digits")
    return _signed(puzzle, hmac_secret, expires_at, data)


class BoundIssuer:
    """What a server issues for every challenge request: :func:`issue_challenge_json` for
    :func:`binding_data`'s data with the puzzle's own challenge id, byte for byte, written for
    the request path.

    The secrets are checked once, here. The data's JSON is written straight into the canonical
    bytes (its keys are this module's, fixed, and sorted: act, cid, drop, ipp, pid); the
    values that repeat from request to request (drop, action, IP prefix, person) are
    JSON-encoded when first seen and remembered, so a request builds no dict and serialises
    nothing but the challenge id and the expiry.
    """

    def __init__(
        self, *, hmac_secret: bytes, key_signature_secret: bytes, remember: int = 100_000
    ) -> None:
        """``remember``: encodings kept per table (a pid per person), which is emptied when
        full."""
        _check_secrets(hmac_secret, key_signature_secret)
        self._hmac_secret = hmac_secret
        self._remember_max = remember
        self._ascii: dict[str, bytes] = {}  # drop id, action, IP prefix -> JSON string
        self._pids: dict[str, bytes] = {}  # pid -> JSON string of its binding_pid

    def issue(
        self, puzzle: Puzzle, *, expires_at: int, drop_id: str, pid: str, action: str,
        ip_prefix: str,
    ) -> bytes:  # fmt: skip
        """The challenge's JSON bytes. ``drop_id``, ``action`` and ``ip_prefix`` must be ASCII
        (the pid may be anything: :func:`binding_pid` makes it ASCII); the puzzle's challenge
        id, URL-safe base64 from :func:`prepare_puzzle`, is written as it is."""
        _check_expiry(expires_at)
        head, tail, challenge_id = puzzle
        if not challenge_id:
            raise ValueError("the puzzle has no challenge id (made by prepare_puzzle)")
        known = self._ascii
        pid_json = self._pids.get(pid) or self._remember_pid(pid)
        canonical = b'%b{"act":%b,"cid":"%b","drop":%b,"ipp":%b,"pid":%b},"expiresAt":%d,%b' % (
            head,
            known.get(action) or self._remember(action),
            challenge_id.encode(),
            known.get(drop_id) or self._remember(drop_id),
            known.get(ip_prefix) or self._remember(ip_prefix),
            pid_json,
            expires_at,
            tail,
        )
        return _signed_json(self._hmac_secret, canonical)

    def _remember(self, value: str) -> bytes:
        if not value.isascii():
            raise ValueError("drop_id, action and ip_prefix must be ASCII")
        return self._keep(self._ascii, value, value)

    def _remember_pid(self, pid: str) -> bytes:
        return self._keep(self._pids, pid, binding_pid(pid))

    def _keep(self, table: dict[str, bytes], key: str, value: str) -> bytes:
        """``value``'s JSON string, remembered under ``key`` (the table starts over when
        full)."""
        if len(table) >= self._remember_max:
            table.clear()
        encoded = table[key] = orjson.dumps(value)
        return encoded


def _check_secrets(hmac_secret: bytes, key_signature_secret: bytes) -> None:
    if not hmac_secret or not key_signature_secret:
        raise ValueError("hmac_secret and key_signature_secret must not be empty")
    if hmac.compare_digest(hmac_secret, key_signature_secret):
        raise ValueError("hmac_secret and key_signature_secret must differ")


def _check_expiry(expires_at: int) -> None:
    if type(expires_at) is not int or not 0 < expires_at <= _MAX_INT:
        raise ValueError(f"expires_at must be unix seconds as an int, got {expires_at!r}")


def _signed(puzzle: Puzzle, hmac_secret: bytes, expires_at: int, data: Mapping[str, str]) -> bytes:
    head, tail, _ = puzzle
    canonical = b'%b%b,"expiresAt":%d,%b' % (
        head,
        orjson.dumps(data, option=orjson.OPT_SORT_KEYS),
        expires_at,
        tail,
    )
    return _signed_json(hmac_secret, canonical)


def _signed_json(hmac_secret: bytes, canonical: bytes) -> bytes:
    """The challenge around its canonical parameters: the response embeds the signed bytes."""
    signature = _hmac_sha256_hex(hmac_secret, canonical)
    return b'{"parameters":%b,"signature":"%b"}' % (canonical, signature.encode())


def issue_challenge(
    pre: PreDerived | Puzzle,
    *,
    hmac_secret: bytes,
    key_signature_secret: bytes,
    expires_at: int,
    data: Mapping[str, str],
) -> dict[str, object]:
    """:func:`issue_challenge_json` as a JSON object (for the solver, tests and tools)."""
    puzzle = prepare_puzzle(pre, key_signature_secret) if isinstance(pre, PreDerived) else pre
    body = issue_challenge_json(
        puzzle,
        hmac_secret=hmac_secret,
        key_signature_secret=key_signature_secret,
        expires_at=expires_at,
        data=data,
    )
    challenge: dict[str, object] = orjson.loads(body)
    return challenge


def derive_puzzle(difficulty: Difficulty, key_signature_secret: bytes) -> Puzzle:
    """Pre-derive and prepare one puzzle (what the pool's workers run)."""
    return prepare_puzzle(pre_derive(difficulty), key_signature_secret)


def _invalid(message: str) -> PowError:
    return PowError(POW_INVALID, message)


def _is_hex(value: object, min_len: int, max_len: int) -> bool:
    """Lowercase hex of a length in [min_len, max_len] (lowercase: one spelling per value)."""
    return (
        type(value) is str
        and min_len <= len(value) <= max_len
        and _HEX_RE.fullmatch(value) is not None
    )


def _is_int(value: object, low: int, high: int) -> bool:
    # type() is int: JSON true/false are bools, and bools are ints to isinstance().
    return type(value) is int and low <= value <= high


def _decode(payload: str | bytes) -> dict[str, object]:
    if len(payload) > MAX_PAYLOAD_CHARS:
        raise _invalid(f"payload longer than {MAX_PAYLOAD_CHARS} characters")
    try:
        raw = binascii.a2b_base64(payload, strict_mode=True)
    except ValueError:  # binascii.Error, or a str with non-ASCII characters
        raise _invalid("payload is not base64") from None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid("payload is not JSON") from None
    if type(obj) is not dict:
        raise _invalid("payload is not a JSON object")
    if "test" in obj:
        raise _invalid("test-mode payload refused")
    if obj.keys() != _PAYLOAD_KEYS:
        raise _invalid("payload must have exactly the keys 'challenge' and 'solution'")
    return obj


def verify_payload(
    payload: str | bytes,
    *,
    hmac_secret: bytes,
    key_signature_secret: bytes,
    now: float,
    allowed_algorithms: Collection[str] = ALGORITHMS,
    allow_slow_path: bool = True,
) -> Ticket:
    """Verify an ALTCHA v2 payload (the base64 string the widget submits).

    Returns the :class:`Ticket`, or raises :class:`PowError` (``pow_invalid`` or
    ``pow_expired``). See the module docstring for the order of checks. ``now`` is unix
    seconds; the challenge is valid while ``now < expiresAt``.

    Canonical JSON here is orjson's sorted output, exact for everything we issue (ASCII,
    non-numeric keys); a foreign challenge whose ``data`` has integer-like or non-ASCII keys
    fails the signature check (refused, never wrongly accepted).

    The slow path (a challenge without ``keySignature``) runs one KDF, which may take
    milliseconds to hundreds of milliseconds: dropserver never issues such challenges, so the
    request handler should pass ``allow_slow_path=False``; anyone who enables it must call this
    function from an executor, not on the event loop.
    """
    # -- 1. Structure, and the fields the signature does not cover.
    obj = _decode(payload)
    challenge = obj["challenge"]
    solution = obj["solution"]
    if type(challenge) is not dict or challenge.keys() != _CHALLENGE_KEYS:
        raise _invalid("challenge must have exactly the keys 'parameters' and 'signature'")
    params = challenge["parameters"]
    signature = challenge["signature"]
    if type(params) is not dict:
        raise _invalid("parameters is not an object")
    if type(signature) is not str or _SIGNATURE_RE.fullmatch(signature) is None:
        raise _invalid("signature is missing or not 64 lowercase hex characters")
    if type(solution) is not dict:
        raise _invalid("solution is not an object")
    solution_keys = solution.keys()
    if not (_REQUIRED_SOLUTION <= solution_keys <= _SOLUTION_KEYS):
        raise _invalid("solution must have 'counter', 'derivedKey' and optionally 'time'")
    counter = solution["counter"]
    derived_key = solution["derivedKey"]
    # The checks below spell _is_int and _is_hex out: this is every ticketed request's path,
    # and the seven calls cost 0.5 us of its 11.8 (bench/pow_micro.py).
    if type(counter) is not int or not 0 <= counter <= _UINT32_MAX:
        raise _invalid("counter is not an integer in [0, 2**32-1]")
    if type(derived_key) is not str:
        raise _invalid("derivedKey is not a string")
    solve_time = solution.get("time", 0)
    if type(solve_time) is not int and type(solve_time) is not float:
        raise _invalid("solution time is not a number")

    # -- 2. Signature. orjson serialises whatever JSON it parsed; a forged value of any type
    # changes the bytes and fails the comparison.
    try:
        canonical = orjson.dumps(params, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        raise _invalid("parameters cannot be canonicalised") from None
    if not hmac.compare_digest(_hmac_sha256_hex(hmac_secret, canonical), signature):
        raise _invalid("bad challenge signature")

    # -- 3. Signed parameters: ours, but still shape-checked (see the module docstring).
    keys = params.keys()
    if not (_REQUIRED_PARAMS <= keys <= _ALLOWED_PARAMS):
        raise _invalid("parameters lack required keys or have unknown ones")
    algorithm = params["algorithm"]
    key_length = params["keyLength"]
    key_prefix = params["keyPrefix"]
    key_signature = params.get("keySignature")
    expires_at = params.get("expiresAt")
    data = params.get("data", {})
    if type(algorithm) is not str:
        raise _invalid("algorithm is not a string")
    if type(key_length) is not int or not _MIN_KEY_LENGTH <= key_length <= _MAX_KEY_LENGTH:
        raise _invalid(f"keyLength is not an integer in [{_MIN_KEY_LENGTH}, {_MAX_KEY_LENGTH}]")
    if (
        type(key_prefix) is not str
        or not 1 <= len(key_prefix) <= 2 * key_length
        or _HEX_RE.fullmatch(key_prefix) is None
    ):
        raise _invalid("keyPrefix is not hex of at most keyLength bytes")
    if key_signature is not None and (
        type(key_signature) is not str or _SIGNATURE_RE.fullmatch(key_signature) is None
    ):
        raise _invalid("keySignature is not 64 lowercase hex characters")
    if expires_at is not None and (type(expires_at) is not int or not 1 <= expires_at <= _MAX_INT):
        raise _invalid("expiresAt is not a positive integer")
    if type(data) is not dict:
        raise _invalid("data is not an object")
    for data_key, data_value in data.items():
        if type(data_value) is not str:
            raise _invalid(f"data[{data_key!r}] is not a string")

    # -- 4. Expiry.
    if expires_at is None:
        raise PowError(POW_EXPIRED, "challenge has no expiresAt")
    assert type(expires_at) is int
    if now >= expires_at:
        raise PowError(POW_EXPIRED, "challenge expired")

    # -- 5. Policy.
    if algorithm not in allowed_algorithms:
        raise _invalid(f"algorithm {algorithm!r} is not allowed")
    challenge_id = data.get(DATA_CHALLENGE_ID)
    if not challenge_id:
        raise _invalid("challenge has no challenge id")

    # -- 6. Solution. Both paths also require the key to carry the signed prefix.
    if len(derived_key) != 2 * key_length or _HEX_RE.fullmatch(derived_key) is None:
        raise _invalid("derivedKey is not lowercase hex of keyLength bytes")
    if key_signature is not None:
        key_ok = hmac.compare_digest(
            _hmac_sha256_hex(key_signature_secret, bytes.fromhex(derived_key)), key_signature
        )
    elif allow_slow_path:
        key_ok = _rederive(params, algorithm, counter, key_length, derived_key)
    else:
        raise _invalid("challenge has no keySignature and the slow path is disabled")
    if not (key_ok and derived_key.startswith(key_prefix)):
        raise _invalid("wrong solution")
    return Ticket(data=data, expires_at=expires_at, challenge_id=challenge_id)


def _rederive(
    params: dict[str, object], algorithm: str, counter: int, key_length: int, derived_key: str
) -> bool:
    """Slow path: re-run the KDF for the submitted counter; True if it yields ``derived_key``.

    The caller also checks the prefix. Without that check any counter (say 0) with its honestly
    derived key would pass with no search at all: the bug in altcha-lib JS ``verifySolution``.
    """
    if algorithm not in ALGORITHMS:
        raise _invalid(f"algorithm {algorithm!r} is not supported")
    nonce = params["nonce"]
    salt = params["salt"]
    cost = params["cost"]
    memory_cost = params.get("memoryCost")
    parallelism = params.get("parallelism")
    if not (_is_hex(nonce, 2, _MAX_NONCE_HEX) and _is_hex(salt, 2, _MAX_NONCE_HEX)):
        raise _invalid("nonce or salt is not hex")
    assert type(nonce) is str and type(salt) is str
    if len(nonce) % 2 or len(salt) % 2:
        raise _invalid("nonce or salt has an odd number of hex digits")
    if not _is_int(cost, 1, _MAX_INT):
        raise _invalid("cost is not a positive integer")
    for name, value in (("memoryCost", memory_cost), ("parallelism", parallelism)):
        if value is not None and not _is_int(value, 1, _MAX_INT):
            raise _invalid(f"{name} is not a positive integer")
    assert type(cost) is int
    assert memory_cost is None or type(memory_cost) is int
    assert parallelism is None or type(parallelism) is int
    try:
        key = derive_key(
            algorithm,
            password(bytes.fromhex(nonce), counter),
            bytes.fromhex(salt),
            cost,
            key_length,
            memory_cost,
            parallelism,
        )
    except (ValueError, OverflowError, MemoryError):
        raise _invalid("cannot derive a key with these parameters") from None
    return hmac.compare_digest(key.hex(), derived_key)
