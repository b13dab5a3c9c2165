"""Issuing and verifying challenges: ALTCHA compatibility and every refusal, with its code."""

from __future__ import annotations

import base64
import copy
import gc
import hmac
import pickle
import time
from collections.abc import Callable
from typing import Any

import altcha
import orjson
import pytest
from altcha import v2 as altcha_v2

from dropserver.pow import (
    MAX_PAYLOAD_CHARS,
    BoundIssuer,
    Difficulty,
    PowError,
    Puzzle,
    Ticket,
    binding_data,
    binding_pid,
    canonical_json,
    check_binding,
    derive_key,
    derive_puzzle,
    issue_challenge,
    issue_challenge_json,
    password,
    payload,
    pre_derive,
    solve,
    verify_payload,
)
from dropserver.pow.challenge import prepare_puzzle
from tests.pow.helpers import (
    DATA,
    EXPIRES_AT,
    HMAC_SECRET,
    KEY_SECRET,
    NOW,
    SMALL,
    SMALL_SCRYPT,
    SMALL_SHA,
    decode,
    encode,
    issue,
    sign,
    sign_canonical,
    solved,
)


def verify(text: str | bytes, **kwargs: Any) -> Ticket:
    options: dict[str, Any] = {
        "hmac_secret": HMAC_SECRET,
        "key_signature_secret": KEY_SECRET,
        "now": NOW,
    }
    options.update(kwargs)
    return verify_payload(text, **options)


def refused(text: str | bytes, code: str = "pow_invalid", **kwargs: Any) -> str:
    with pytest.raises(PowError) as info:
        verify(text, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value.message


# -- issuing


@pytest.mark.parametrize("difficulty", [SMALL, SMALL_SHA, SMALL_SCRYPT])
def test_issued_challenge_shape(difficulty: Difficulty) -> None:
    pre, challenge = issue(difficulty)
    params = challenge["parameters"]
    assert set(challenge) == {"parameters", "signature"}
    expected_keys = {
        "algorithm",
        "nonce",
        "salt",
        "cost",
        "keyLength",
        "keyPrefix",
        "keySignature",
        "expiresAt",
        "data",
    }
    if difficulty.algorithm == "SCRYPT":
        expected_keys |= {"memoryCost", "parallelism"}
        assert (params["memoryCost"], params["parallelism"]) == (2, 1)
    assert set(params) == expected_keys
    assert params["algorithm"] == difficulty.algorithm
    assert params["nonce"] == pre.nonce.hex() and len(pre.nonce) == 16
    assert params["salt"] == pre.salt.hex() and len(pre.salt) == 16
    assert params["cost"] == difficulty.cost
    assert params["keyLength"] == 32
    assert params["keyPrefix"] == pre.key[:16].hex()
    assert params["keySignature"] == hmac.new(KEY_SECRET, pre.key, "sha256").hexdigest()
    assert params["expiresAt"] == EXPIRES_AT
    assert params["data"] == DATA
    # The signature is HMAC over canonical JSON, as both our encoder and the library's see it.
    assert canonical_json(params) == altcha_v2._canonical_json(params).encode()
    assert (
        challenge["signature"]
        == hmac.new(HMAC_SECRET, canonical_json(params), "sha256").hexdigest()
    )
    # What goes on the wire is plain JSON.
    assert orjson.loads(orjson.dumps(challenge)) == challenge


@pytest.mark.parametrize("difficulty", [SMALL, SMALL_SHA, SMALL_SCRYPT])
def test_response_bytes_carry_the_signed_canonical_json(difficulty: Difficulty) -> None:
    """The served bytes are written once: the parameters in them are, byte for byte, the
    canonical JSON the signature covers (by our encoder and the ALTCHA library's), also for
    data that JSON must escape."""
    pre = pre_derive(difficulty)
    puzzle = prepare_puzzle(pre, KEY_SECRET)
    data = {**DATA, "pid": 'a"b\\c\x01/d'}
    body = issue_challenge_json(
        puzzle,
        hmac_secret=HMAC_SECRET,
        key_signature_secret=KEY_SECRET,
        expires_at=EXPIRES_AT,
        data=data,
    )
    challenge = orjson.loads(body)
    params = challenge["parameters"]
    assert params["data"] == data and params["expiresAt"] == EXPIRES_AT
    assert params["keySignature"] == hmac.new(KEY_SECRET, pre.key, "sha256").hexdigest()
    canonical = canonical_json(params)
    assert canonical == altcha_v2._canonical_json(params).encode()
    assert body == b'{"parameters":%b,"signature":"%b"}' % (
        canonical,
        hmac.new(HMAC_SECRET, canonical, "sha256").hexdigest().encode(),
    )
    # And a solution of it verifies.
    ticket = verify(payload(challenge, solve(challenge)))
    assert ticket.data == data


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hmac_secret": b""}, "must not be empty"),
        ({"key_signature_secret": b""}, "must not be empty"),
        ({"key_signature_secret": HMAC_SECRET}, "must differ"),
        ({"expires_at": True}, "expires_at"),
        ({"expires_at": 1.5}, "expires_at"),
        ({"expires_at": 0}, "expires_at"),
        ({"data": {"k": "é"}}, "ASCII"),
        ({"data": {"k": 1}}, "ASCII"),
        ({"data": {"123": "x"}}, "digits"),
    ],
)
def test_issue_refuses_bad_input(kwargs: dict[str, Any], match: str) -> None:
    options: dict[str, Any] = {
        "hmac_secret": HMAC_SECRET,
        "key_signature_secret": KEY_SECRET,
        "expires_at": EXPIRES_AT,
        "data": {},
    }
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        issue_challenge(pre_derive(SMALL), **options)


_BOUND = {"drop_id": "d-1", "pid": "person-1", "action": "buy", "ip_prefix": "203.0.113.0/24"}


def test_bound_challenge_is_the_general_one_with_the_puzzles_id() -> None:
    puzzle = derive_puzzle(SMALL, KEY_SECRET)
    _, _, challenge_id = puzzle
    secrets = {"hmac_secret": HMAC_SECRET, "key_signature_secret": KEY_SECRET}
    bound = BoundIssuer(**secrets).issue(puzzle, expires_at=EXPIRES_AT, **_BOUND)
    general = issue_challenge_json(
        puzzle,
        expires_at=EXPIRES_AT,
        data=binding_data(**_BOUND, cid=challenge_id),
        **secrets,
    )
    assert bound == general
    ticket = verify(payload(orjson.loads(bound), solve(orjson.loads(bound))))
    assert ticket.challenge_id == challenge_id
    check_binding(ticket, **_BOUND)


def test_every_puzzle_has_its_own_challenge_id() -> None:
    ids = {
        challenge_id
        for _, _, challenge_id in (derive_puzzle(SMALL, KEY_SECRET) for _ in range(200))
    }
    assert len(ids) == 200 and all(len(i) >= 22 for i in ids)


@pytest.mark.parametrize(
    ("secrets", "match"),
    [
        ({"hmac_secret": b""}, "must not be empty"),
        ({"key_signature_secret": b""}, "must not be empty"),
        ({"key_signature_secret": HMAC_SECRET}, "must differ"),
    ],
)
def test_bound_issuer_refuses_bad_secrets(secrets: dict[str, bytes], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BoundIssuer(**{"hmac_secret": HMAC_SECRET, "key_signature_secret": KEY_SECRET, **secrets})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"expires_at": 1.5}, "expires_at"),
        ({"expires_at": 0}, "expires_at"),
        ({"drop_id": "d-é"}, "ASCII"),
        ({"action": "bü"}, "ASCII"),
        ({"ip_prefix": "::/56\u00a0"}, "ASCII"),
    ],
)
def test_bound_challenge_refuses_bad_input(kwargs: dict[str, Any], match: str) -> None:
    issuer = BoundIssuer(hmac_secret=HMAC_SECRET, key_signature_secret=KEY_SECRET)
    options: dict[str, Any] = {"expires_at": EXPIRES_AT, **_BOUND, **kwargs}
    with pytest.raises(ValueError, match=match):
        issuer.issue(derive_puzzle(SMALL, KEY_SECRET), **options)


def test_bound_issuer_remembers_encodings_without_mixing_them() -> None:
    """A pid goes through binding_pid, the other values do not: a pid and a drop id spelled
    alike must not share a remembered encoding, also once a full table has started over."""
    issuer = BoundIssuer(hmac_secret=HMAC_SECRET, key_signature_secret=KEY_SECRET, remember=3)
    for i in range(10):
        same = f"a%{i}"  # a '%' is percent-encoded in a pid, kept in a drop id
        challenge = issuer.issue(
            derive_puzzle(SMALL, KEY_SECRET), expires_at=EXPIRES_AT, drop_id=same, pid=same,
            action="buy", ip_prefix="203.0.113.0/24",
        )  # fmt: skip
        data = orjson.loads(challenge)["parameters"]["data"]
        assert data["drop"] == same and data["pid"] == binding_pid(same) == f"a%25{i}"


def test_stocked_puzzles_leave_the_garbage_collector() -> None:
    """A pool stocked for a big opening holds hundreds of thousands of puzzles; they must not
    lengthen the collector's full passes (each one stops the event loop). A puzzle as the
    pool's workers send it, once collected, is no longer tracked."""
    puzzle = pickle.loads(pickle.dumps(derive_puzzle(SMALL, KEY_SECRET)))
    gc.collect()
    assert not gc.is_tracked(puzzle)


def test_bound_challenge_needs_a_puzzle_with_an_id() -> None:
    prepared = derive_puzzle(SMALL, KEY_SECRET)
    head, tail, _ = prepared
    bare: Puzzle = (head, tail, "")
    issuer = BoundIssuer(hmac_secret=HMAC_SECRET, key_signature_secret=KEY_SECRET)
    with pytest.raises(ValueError, match="challenge id"):
        issuer.issue(bare, expires_at=EXPIRES_AT, **_BOUND)


def test_bound_challenge_carries_a_pid_outside_ascii() -> None:
    puzzle = derive_puzzle(SMALL, KEY_SECRET)
    issuer = BoundIssuer(hmac_secret=HMAC_SECRET, key_signature_secret=KEY_SECRET)
    bound = issuer.issue(puzzle, expires_at=EXPIRES_AT, **{**_BOUND, "pid": "张伟"})
    assert bound.isascii()
    ticket = verify(payload(orjson.loads(bound), solve(orjson.loads(bound))))
    check_binding(ticket, **{**_BOUND, "pid": "张伟"})


# -- round trips and ALTCHA compatibility


@pytest.mark.parametrize("difficulty", [SMALL, SMALL_SHA, SMALL_SCRYPT])
def test_our_solver_round_trip(difficulty: Difficulty) -> None:
    pre, challenge = issue(difficulty)
    solution = solve(challenge)
    assert solution.counter == pre.counter
    ticket = verify(payload(challenge, solution))
    assert ticket == Ticket(data=DATA, expires_at=EXPIRES_AT, challenge_id=DATA["cid"])


def test_payload_may_be_bytes() -> None:
    _, challenge = issue()
    assert verify(solved(challenge).encode()).challenge_id == DATA["cid"]


@pytest.mark.parametrize("difficulty", [SMALL, SMALL_SHA, SMALL_SCRYPT])
def test_altcha_library_solves_our_challenge_and_both_verifiers_agree(
    difficulty: Difficulty,
) -> None:
    expires_at = int(time.time()) + 600  # the library checks expiry against the real clock
    pre, challenge = issue(difficulty, expires_at=expires_at)
    lib_challenge = altcha.Challenge.from_dict(copy.deepcopy(challenge))
    lib_solution = altcha.solve_challenge(lib_challenge, timeout=30)
    assert lib_solution is not None and lib_solution.counter == pre.counter
    lib_payload = altcha.Payload(lib_challenge, lib_solution).to_base64()
    # The library's payload (json.dumps with spaces) verifies with ours ...
    ticket = verify(lib_payload, now=time.time())
    assert ticket.challenge_id == DATA["cid"]
    # ... and our solver's payload verifies with the library, fast and slow path.
    ours = solved(challenge)
    for key_secret in (KEY_SECRET, None):
        result = altcha.verify_solution(ours, HMAC_SECRET, hmac_key_secret=key_secret)
        assert result.verified, vars(result)
    assert altcha.verify_solution(lib_payload, HMAC_SECRET, hmac_key_secret=KEY_SECRET).verified


@pytest.mark.parametrize("algorithm", ["PBKDF2/SHA-256", "SHA-256", "SCRYPT"])
def test_challenge_issued_by_altcha_library_verifies_with_ours(algorithm: str) -> None:
    cost = 16 if algorithm == "SCRYPT" else 10
    lib_challenge = altcha.create_challenge(
        algorithm,
        cost,
        counter=37,
        memory_cost=1 if algorithm == "SCRYPT" else None,
        expires_at=EXPIRES_AT,
        data=dict(DATA),
        hmac_secret=HMAC_SECRET,
        hmac_key_secret=KEY_SECRET,
    )
    challenge = lib_challenge.to_dict()
    assert "keySignature" in challenge["parameters"]
    solution = solve(challenge)
    assert solution.counter == 37
    assert verify(payload(challenge, solution)).data == DATA


def test_library_challenge_without_key_signature_uses_the_slow_path() -> None:
    lib_challenge = altcha.create_challenge(
        "PBKDF2/SHA-256",
        10,
        counter=25,
        expires_at=EXPIRES_AT,
        data=dict(DATA),
        hmac_secret=HMAC_SECRET,
    )
    challenge = lib_challenge.to_dict()
    assert "keySignature" not in challenge["parameters"]
    text = payload(challenge, solve(challenge))
    assert verify(text).challenge_id == DATA["cid"]
    assert "slow path is disabled" in refused(text, allow_slow_path=False)


def test_probabilistic_library_challenge_slow_path() -> None:
    # keyPrefix "0": any counter whose key starts with hex 0 (odd-length prefix).
    lib_challenge = altcha.create_challenge(
        "PBKDF2/SHA-256",
        10,
        key_prefix="0",
        expires_at=EXPIRES_AT,
        data=dict(DATA),
        hmac_secret=HMAC_SECRET,
    )
    challenge = lib_challenge.to_dict()
    solution = solve(challenge)
    assert solution.derived_key.startswith("0")
    assert verify(payload(challenge, solution)).challenge_id == DATA["cid"]


# -- refusals: encoding and structure


def test_oversize_payload_refused_before_decoding() -> None:
    assert "longer than" in refused("A" * (MAX_PAYLOAD_CHARS + 1))
    # A genuine, signed, solved challenge with a huge data value is refused just the same.
    _, challenge = issue(data={**DATA, "pad": "x" * 4000})
    assert "longer than" in refused(solved(challenge))


@pytest.mark.parametrize("text", ["not base64!", "abc", "YWJj\n", " YWJj", "é", "YW=Jj", ""])
def test_not_base64(text: str) -> None:
    message = refused(text)
    assert "base64" in message or "JSON" in message  # "" decodes to b"", which is not JSON


@pytest.mark.parametrize("raw", [b"not json", b"{", b'{"a":1,}', b"\xff\xfe", b"NaN"])
def test_not_json(raw: bytes) -> None:
    assert "not JSON" in refused(base64.b64encode(raw).decode())


@pytest.mark.parametrize("obj", [[], "x", 1, None, True])
def test_not_an_object(obj: object) -> None:
    assert "not a JSON object" in refused(encode(obj))


def test_widget_test_mode_payload_refused() -> None:
    widget_bytes = b'{"challenge":null,"solution":null,"test":true}'
    assert "test-mode" in refused(base64.b64encode(widget_bytes).decode())
    # "test" next to a genuine solution is refused as well.
    _, challenge = issue()
    obj = decode(solved(challenge))
    obj["test"] = True
    assert "test-mode" in refused(encode(obj))


def _mutations() -> list[tuple[str, Callable[[dict[str, Any]], None]]]:
    def setter(path: tuple[str, ...], value: object) -> Callable[[dict[str, Any]], None]:
        def apply(obj: dict[str, Any]) -> None:
            target = obj
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value

        return apply

    def deleter(path: tuple[str, ...]) -> Callable[[dict[str, Any]], None]:
        def apply(obj: dict[str, Any]) -> None:
            target = obj
            for key in path[:-1]:
                target = target[key]
            del target[path[-1]]

        return apply

    sol = ("solution",)
    chal = ("challenge",)
    return [
        ("extra top-level key", setter(("extra",), 1)),
        ("no solution", deleter(sol)),
        ("no challenge", deleter(chal)),
        ("challenge null", setter(chal, None)),
        ("challenge list", setter(chal, [])),
        ("solution null", setter(sol, None)),
        ("solution string", setter(sol, "x")),
        ("extra challenge key", setter((*chal, "codeChallenge"), {})),
        ("parameters null", setter((*chal, "parameters"), None)),
        ("parameters list", setter((*chal, "parameters"), [])),
        ("no signature", deleter((*chal, "signature"))),
        ("signature null", setter((*chal, "signature"), None)),
        ("signature int", setter((*chal, "signature"), 1)),
        ("signature short", setter((*chal, "signature"), "ab")),
        ("signature non-hex", setter((*chal, "signature"), "z" * 64)),
        ("signature non-ascii", setter((*chal, "signature"), "é" * 64)),
        ("no counter", deleter((*sol, "counter"))),
        ("no derivedKey", deleter((*sol, "derivedKey"))),
        ("extra solution key", setter((*sol, "took"), 1)),
        ("counter string", setter((*sol, "counter"), "5")),
        ("counter bool", setter((*sol, "counter"), True)),
        ("counter float", setter((*sol, "counter"), 5.0)),
        ("counter negative", setter((*sol, "counter"), -1)),
        ("counter above uint32", setter((*sol, "counter"), 2**32)),
        ("counter null", setter((*sol, "counter"), None)),
        ("derivedKey int", setter((*sol, "derivedKey"), 1)),
        ("derivedKey list", setter((*sol, "derivedKey"), [])),
        ("time string", setter((*sol, "time"), "1")),
        ("time bool", setter((*sol, "time"), False)),
        ("time null", setter((*sol, "time"), None)),
    ]


@pytest.mark.parametrize(("name", "mutate"), _mutations(), ids=[m[0] for m in _mutations()])
def test_wrong_structure_or_types(name: str, mutate: Callable[[dict[str, Any]], None]) -> None:
    _, challenge = issue()
    obj = decode(solved(challenge))
    mutate(obj)
    refused(encode(obj))


@pytest.mark.parametrize(
    "derived_key",
    [
        "UPPER",  # replaced below by the uppercase of the right key
        "short",
        "0" * 63,
        "0" * 66,
        "g" * 64,
        "0" * 64,
    ],
)
def test_wrong_derived_key(derived_key: str) -> None:
    _, challenge = issue()
    obj = decode(solved(challenge))
    right = obj["solution"]["derivedKey"]
    obj["solution"]["derivedKey"] = right.upper() if derived_key == "UPPER" else derived_key
    refused(encode(obj))


def test_last_digit_of_derived_key_flipped() -> None:
    _, challenge = issue()
    obj = decode(solved(challenge))
    key = obj["solution"]["derivedKey"]
    obj["solution"]["derivedKey"] = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert refused(encode(obj)) == "wrong solution"


def test_fast_path_ignores_counter_but_checks_type() -> None:
    """With a key signature the key is what counts; the counter is still type-checked."""
    _, challenge = issue()
    obj = decode(solved(challenge))
    obj["solution"]["counter"] = 0
    assert verify(encode(obj)).challenge_id == DATA["cid"]


# -- refusals: signature and tampering


def test_bad_signature() -> None:
    _, challenge = issue()
    obj = decode(solved(challenge))
    sig = obj["challenge"]["signature"]
    obj["challenge"]["signature"] = ("1" if sig[0] == "0" else "0") + sig[1:]
    assert refused(encode(obj)) == "bad challenge signature"
    # Signed with another secret.
    assert refused(solved(challenge), hmac_secret=b"another secret") == "bad challenge signature"


def _tamper(value: object) -> object:
    if isinstance(value, bool) or value is None:
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, str):
        return value[:-1] + ("0" if value[-1:] != "0" else "1")
    assert isinstance(value, dict)
    return {**value, "pid": "someone-else"}


@pytest.mark.parametrize("difficulty", [SMALL, SMALL_SCRYPT])
def test_tampered_parameter_each_field(difficulty: Difficulty) -> None:
    _, challenge = issue(difficulty)
    good = decode(solved(challenge))
    for key, value in good["challenge"]["parameters"].items():
        variants: list[object] = [_tamper(value), None, str(value), [value]]
        if isinstance(value, int):
            variants += [float(value), value > 0]
        for variant in variants:
            if type(variant) is type(value) and variant == value:
                continue
            obj = copy.deepcopy(good)
            obj["challenge"]["parameters"][key] = variant
            assert refused(encode(obj)) == "bad challenge signature", (key, variant)
        obj = copy.deepcopy(good)
        del obj["challenge"]["parameters"][key]
        assert refused(encode(obj)) == "bad challenge signature", key
    obj = copy.deepcopy(good)
    obj["challenge"]["parameters"]["extra"] = "x"
    assert refused(encode(obj)) == "bad challenge signature"
    obj = copy.deepcopy(good)
    obj["challenge"]["parameters"]["data"]["extra"] = "x"
    assert refused(encode(obj)) == "bad challenge signature"


def test_later_expiry_cannot_be_spliced_in() -> None:
    _, challenge = issue()
    obj = decode(solved(challenge))
    obj["challenge"]["parameters"]["expiresAt"] = EXPIRES_AT + 3600
    assert refused(encode(obj), now=EXPIRES_AT + 1) == "bad challenge signature"


# -- refusals: signed but not acceptable


def _signed_payload(params: dict[str, Any], key: bytes, counter: int = 0) -> str:
    return encode(
        {"challenge": sign(params), "solution": {"counter": counter, "derivedKey": key.hex()}}
    )


def _base_params(pre_key: bytes, **changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "algorithm": "PBKDF2/SHA-256",
        "nonce": "00" * 16,
        "salt": "11" * 16,
        "cost": 10,
        "keyLength": 32,
        "keyPrefix": pre_key[:16].hex(),
        "keySignature": hmac.new(KEY_SECRET, pre_key, "sha256").hexdigest(),
        "expiresAt": EXPIRES_AT,
        "data": dict(DATA),
    }
    params.update(changes)
    return {k: v for k, v in params.items() if v is not ...}


KEY = bytes(range(32))


def test_signed_base_params_pass() -> None:
    assert verify(_signed_payload(_base_params(KEY), KEY)).challenge_id == DATA["cid"]


@pytest.mark.parametrize(
    "changes",
    [
        {"keyLength": True},
        {"keyLength": 8},
        {"keyLength": "32"},
        {"keyPrefix": KEY[:16].hex().upper()},
        {"keyPrefix": ""},
        {"keyPrefix": 5},
        {"keySignature": "x"},
        {"keySignature": None},
        {"expiresAt": str(EXPIRES_AT)},
        {"expiresAt": float(EXPIRES_AT)},
        {"expiresAt": True},
        {"algorithm": 1},
        {"data": {**DATA, "n": 1}},
        {"data": ["x"]},
        {"data": {k: v for k, v in DATA.items() if k != "cid"}},
        {"data": {**DATA, "cid": ""}},
        {"extra": 1},
        {"cost": ...},
    ],
)
def test_signed_but_malformed_parameters(changes: dict[str, Any]) -> None:
    refused(_signed_payload(_base_params(KEY, **changes), KEY))


def test_fast_path_checks_prefix_as_well_as_key_signature() -> None:
    """A key whose HMAC matches but which lacks the signed prefix must fail (both checks)."""
    params = _base_params(KEY, keyPrefix="ff" + KEY[1:16].hex())
    assert refused(_signed_payload(params, KEY)) == "wrong solution"


def test_expired() -> None:
    _, challenge = issue()
    text = solved(challenge)
    assert verify(text, now=EXPIRES_AT - 0.001).expires_at == EXPIRES_AT
    assert refused(text, "pow_expired", now=EXPIRES_AT) == "challenge expired"
    assert refused(text, "pow_expired", now=EXPIRES_AT + 3600) == "challenge expired"


def test_missing_expiry_is_expired_but_only_once_signed() -> None:
    params = _base_params(KEY, expiresAt=...)
    assert refused(_signed_payload(params, KEY), "pow_expired") == "challenge has no expiresAt"
    # An unsigned (forged) challenge never gets past "invalid", expired or not.
    _, challenge = issue()
    obj = decode(solved(challenge))
    del obj["challenge"]["parameters"]["expiresAt"]
    refused(encode(obj), "pow_invalid", now=EXPIRES_AT + 1)


def test_disallowed_algorithm() -> None:
    _, challenge = issue(SMALL)
    text = solved(challenge)
    message = refused(text, allowed_algorithms={"SCRYPT"})
    assert "not allowed" in message
    assert verify(text, allowed_algorithms={"PBKDF2/SHA-256"}).challenge_id == DATA["cid"]


# -- the slow path


def _slow_challenge(difficulty: Difficulty = SMALL) -> tuple[int, dict[str, Any]]:
    """One of our challenges minus keySignature, re-signed: forces the slow path."""
    pre, challenge = issue(difficulty)
    params = dict(challenge["parameters"])
    del params["keySignature"]
    return pre.counter, sign_canonical(params)


@pytest.mark.parametrize("difficulty", [SMALL, SMALL_SHA, SMALL_SCRYPT])
def test_slow_path_accepts_the_real_solution(difficulty: Difficulty) -> None:
    counter, challenge = _slow_challenge(difficulty)
    solution = solve(challenge)
    assert solution.counter == counter
    assert verify(payload(challenge, solution)).challenge_id == DATA["cid"]


def test_slow_path_refuses_counter_zero_with_its_honest_key() -> None:
    """The altcha-lib JS bug: key == KDF(counter=0) but no prefix check. We check the prefix."""
    _, challenge = _slow_challenge()
    params = challenge["parameters"]
    honest = derive_key(
        params["algorithm"],
        password(bytes.fromhex(params["nonce"]), 0),
        bytes.fromhex(params["salt"]),
        params["cost"],
        params["keyLength"],
    )
    assert not honest.hex().startswith(params["keyPrefix"])
    text = encode({"challenge": challenge, "solution": {"counter": 0, "derivedKey": honest.hex()}})
    assert refused(text) == "wrong solution"


def test_slow_path_refuses_right_key_with_wrong_counter() -> None:
    counter, challenge = _slow_challenge()
    obj = decode(payload(challenge, solve(challenge)))
    obj["solution"]["counter"] = counter + 1
    assert refused(encode(obj)) == "wrong solution"


@pytest.mark.parametrize(
    "changes",
    [
        {"nonce": "abc"},
        {"nonce": "zz"},
        {"salt": 5},
        {"cost": 0},
        {"cost": True},
        {"algorithm": "ARGON2ID"},
        {"algorithm": "SCRYPT", "cost": 1000},  # not a power of two: scrypt refuses it
        {"algorithm": "SCRYPT", "cost": 16, "memoryCost": "8"},
        {"algorithm": "SHA-256", "keyLength": 64},
    ],
)
def test_slow_path_refuses_unusable_signed_parameters(changes: dict[str, Any]) -> None:
    params = _base_params(KEY, keySignature=..., **changes)
    refused(
        _signed_payload(params, KEY),
        allowed_algorithms={"PBKDF2/SHA-256", "SHA-256", "SCRYPT", "ARGON2ID"},
    )


# -- binding


def test_check_binding() -> None:
    ticket = Ticket(data=dict(DATA), expires_at=EXPIRES_AT, challenge_id=DATA["cid"])
    right = {
        "drop_id": "drop-1",
        "pid": "person-1",
        "action": "enter",
        "ip_prefix": "203.0.113.0/24",
    }
    check_binding(ticket, **right)
    for arg, key in (("drop_id", "drop"), ("pid", "pid"), ("action", "act"), ("ip_prefix", "ipp")):
        with pytest.raises(PowError) as info:
            check_binding(ticket, **{**right, arg: "mismatch-value"})
        assert info.value.code == "pow_invalid"
        assert repr(key) in info.value.message
        assert "mismatch-value" not in info.value.message
    missing = Ticket(data={"cid": "x"}, expires_at=EXPIRES_AT, challenge_id="x")
    with pytest.raises(PowError, match="'drop'"):
        check_binding(missing, **right)


def test_binding_data() -> None:
    data = binding_data(drop_id="d", pid="p", action="a", ip_prefix="i")
    assert set(data) == {"drop", "pid", "act", "ipp", "cid"}
    assert len(data["cid"]) >= 16
    assert binding_data(drop_id="d", pid="p", action="a", ip_prefix="i")["cid"] != data["cid"]
    assert binding_data(drop_id="d", pid="p", action="a", ip_prefix="i", cid="c")["cid"] == "c"


@pytest.mark.parametrize("pid", ["张伟", "100%", "%E5%BC%A0", "ü ber", "a\u2028b"])
def test_binding_carries_any_pid_in_ascii(pid: str) -> None:
    data = binding_data(drop_id="d", pid=pid, action="a", ip_prefix="i")
    assert data["pid"].isascii()
    ticket = Ticket(data=data, expires_at=EXPIRES_AT, challenge_id=data["cid"])
    check_binding(ticket, drop_id="d", pid=pid, action="a", ip_prefix="i")


def test_binding_pids_never_collide() -> None:
    # A pid that looks like another's encoding is encoded itself (it holds a '%').
    pids = ["张", "%E5%BC%A0", "%25E5%25BC%25A0", "100%", "100%25", "plain", "a b", "a%20b"]
    forms = [binding_pid(pid) for pid in pids]
    assert len(set(forms)) == len(pids)
    assert binding_pid("plain-ascii_1.2") == "plain-ascii_1.2"  # the usual pid, unchanged
    data = binding_data(drop_id="d", pid="张", action="a", ip_prefix="i")
    ticket = Ticket(data=data, expires_at=EXPIRES_AT, challenge_id=data["cid"])
    with pytest.raises(PowError, match="'pid'"):
        check_binding(ticket, drop_id="d", pid="%E5%BC%A0", action="a", ip_prefix="i")


def test_pow_error() -> None:
    error = PowError("pow_expired", "challenge expired")
    assert (error.code, error.message) == ("pow_expired", "challenge expired")
    assert str(error) == "pow_expired: challenge expired"
