"""Seeds, commitments, receipts, the entries digest, the shuffle and the proof."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from dropserver.lottery import (
    ALGORITHM,
    Drbg,
    EntriesHasher,
    Proof,
    ProofFormatError,
    build_proof,
    commitment,
    entries_digest,
    is_receipt,
    new_entry_id,
    new_seed,
    receipt,
    shuffle,
    shuffle_in_place,
)
from dropserver.lottery.draw import all_receipts, canonical_order
from tests.lottery.stats import chi2_critical, pearson

SEED = bytes(range(32))
BEACON = "beacon:round-1234"


def lp(data: bytes) -> bytes:
    return struct.pack(">Q", len(data)) + data


def receipts_for(drop_id: str, n: int) -> list[str]:
    return sorted(receipt(drop_id, f"entry-{i}") for i in range(n))


def spec_shuffle(items: list[str], drbg: Drbg) -> list[str]:
    """Forward Fisher-Yates exactly as documented, one uniform_below call per step."""
    a = list(items)
    for i in range(len(a) - 1):
        j = i + drbg.uniform_below(len(a) - i)
        a[i], a[j] = a[j], a[i]
    return a


# --- seeds, commitments, receipts -----------------------------------------------------------


def test_seed_and_commitment() -> None:
    seed = new_seed()
    assert len(seed) == 32
    assert new_seed() != seed
    assert commitment(seed) == hashlib.sha256(b"dropserver-commit-v1" + seed).hexdigest()
    assert commitment(SEED) == "47603df9c2591ca9bbf159d5c19f75c5cf7a1078a158d78a5c6976d9798ad213"
    with pytest.raises(ValueError, match="32 bytes"):
        commitment(b"\x00" * 31)


def test_entry_ids_are_128_bit_hex() -> None:
    ids = {new_entry_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 and i == i.lower() for i in ids)


def test_receipt_format() -> None:
    expected = hashlib.sha256(
        lp(b"dropserver-receipt-v1") + lp(b"drop-\xc3\xa9") + lp(b"abc")
    ).hexdigest()
    assert receipt("drop-é", "abc") == expected
    assert receipt("golden-drop", "entry-0") == (
        "1e21706bbbe5bf0c4607005c8a51a20234f12138c4d7adf12b49295f7e271257"
    )
    assert is_receipt(receipt("d", new_entry_id()))


def test_receipt_fields_cannot_be_spliced() -> None:
    assert receipt("ab", "c") != receipt("a", "bc")
    assert receipt("d", "e1") != receipt("d", "e2")
    assert receipt("d1", "e") != receipt("d2", "e")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a" * 64, True),
        ("0123456789abcdef" * 4, True),
        ("A" * 64, False),
        ("a" * 63, False),
        ("a" * 65, False),
        ("g" * 64, False),
        ("a" * 63 + "\n", False),
        ("é" * 64, False),
        (None, False),
        (123, False),
    ],
)
def test_is_receipt_and_all_receipts_agree(value: object, ok: bool) -> None:
    assert is_receipt(value) is ok
    good = [receipt("d", str(i)) for i in range(5)]
    assert all_receipts([*good, value, *good]) is ok  # type: ignore[list-item]


def test_all_receipts_checks_every_chunk() -> None:
    many = [receipt("d", str(i)) for i in range(70_000)]  # more than one 65,536 chunk
    assert all_receipts(many)
    many[-1] = many[-1].upper()
    assert not all_receipts(many)
    assert all_receipts([])


# --- entries digest -------------------------------------------------------------------------


def test_entries_digest_format_and_order_independence() -> None:
    receipts = receipts_for("d", 50)
    expected = hashlib.sha256("".join(r + "\n" for r in receipts).encode()).hexdigest()
    assert entries_digest(receipts) == expected
    assert entries_digest(reversed(receipts)) == expected
    assert entries_digest(iter(receipts[25:] + receipts[:25])) == expected
    assert entries_digest([]) == hashlib.sha256(b"").hexdigest()
    assert canonical_order(reversed(receipts)) == receipts


def test_entries_digest_rejects_bad_lists() -> None:
    receipts = receipts_for("d", 5)
    with pytest.raises(ValueError, match="duplicate receipt"):
        entries_digest([*receipts, receipts[2]])
    with pytest.raises(ValueError, match="malformed receipt"):
        entries_digest([*receipts, receipts[0].upper()])
    with pytest.raises(ValueError, match="malformed receipt"):
        entries_digest([*receipts, "not a receipt"])


def test_hasher_streams_and_matches_one_shot() -> None:
    receipts = receipts_for("stream", 150_000)  # crosses several internal chunks
    one = EntriesHasher()
    one.update_many(receipts)
    by_item = EntriesHasher()
    for r in receipts[:1000]:
        by_item.update(r)
    by_item.update_many(receipts[1000:70_000])
    by_item.update_many(iter(receipts[70_000:]))
    assert one.hexdigest() == by_item.hexdigest() == entries_digest(receipts)
    assert one.count == by_item.count == len(receipts)


def test_hasher_rejects_order_across_calls() -> None:
    a, b, c = receipts_for("d", 3)
    hasher = EntriesHasher()
    hasher.update_many([a, c])
    with pytest.raises(ValueError, match="not in ascending order"):
        hasher.update(b)
    with pytest.raises(ValueError, match="duplicate"):
        hasher.update(c)
    hasher.update_many([])
    assert hasher.count == 2


# --- shuffle --------------------------------------------------------------------------------


def test_shuffle_known_answer() -> None:
    # Frozen: a change here breaks every published proof (bump ALGORITHM instead).
    receipts = receipts_for("golden-drop", 10)
    digest = entries_digest(receipts)
    assert digest == "2779a18ef903d3ac0cac2b890796dd060350e4cc56e9e64fcfa4c835d51c1728"
    order = shuffle(receipts, seed=SEED, digest=digest, beacon=BEACON)
    assert [receipts.index(r) for r in order] == [0, 2, 5, 9, 1, 6, 8, 7, 4, 3]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 10, 257, 5000])
def test_shuffle_follows_the_documented_algorithm(n: int) -> None:
    receipts = receipts_for("spec", n)
    digest = entries_digest(receipts)
    order = shuffle(receipts, seed=SEED, digest=digest, beacon=None)
    assert order == spec_shuffle(receipts, Drbg(SEED, digest, None))
    assert sorted(order) == receipts  # a permutation
    assert receipts == receipts_for("spec", n)  # input left alone


def test_shuffle_rejection_branch_matches_uniform_below() -> None:
    # Crafted words: the hot loop only computes the exact limit for words >= 2**64 - n.
    # For n = 3 the limit is 2**64 - 1, so the first word is rejected, the second kept.
    words = [2**64 - 1, 5, 2**64 - 2, 7]
    items = ["a", "b", "c"]
    fast = Drbg(SEED, entries_digest([]), None)
    fast.next_word = iter(words).__next__
    shuffle_in_place(items, fast)
    spec = Drbg(SEED, entries_digest([]), None)
    spec.next_word = iter(words).__next__
    assert items == spec_shuffle(["a", "b", "c"], spec)
    # 5 % 3 = 2 swaps a and c; (2**64 - 2) % 2 = 0 leaves b; 7 is never needed.
    assert items == ["c", "b", "a"]


def test_shuffle_is_deterministic_and_every_input_matters() -> None:
    receipts = receipts_for("det", 100)
    digest = entries_digest(receipts)
    base = shuffle(receipts, seed=SEED, digest=digest, beacon=BEACON)
    assert shuffle(receipts, seed=SEED, digest=digest, beacon=BEACON) == base
    variants = [
        shuffle(receipts, seed=bytes(32), digest=digest, beacon=BEACON),
        shuffle(receipts, seed=SEED, digest=hashlib.sha256(b"x").hexdigest(), beacon=BEACON),
        shuffle(receipts, seed=SEED, digest=digest, beacon=None),
        shuffle(receipts, seed=SEED, digest=digest, beacon=BEACON + "!"),
    ]
    assert all(v != base for v in variants)


def test_shuffle_requires_canonical_input() -> None:
    receipts = receipts_for("d", 5)
    digest = entries_digest(receipts)
    with pytest.raises(ValueError, match="sorted"):
        shuffle(receipts[::-1], seed=SEED, digest=digest, beacon=None)
    with pytest.raises(ValueError, match="sorted"):
        shuffle([*receipts, receipts[-1]], seed=SEED, digest=digest, beacon=None)


def test_winners_are_decided_by_the_first_supply_steps() -> None:
    """Forward Fisher-Yates: the prefix of length k is final after k steps."""
    receipts = receipts_for("prefix", 40)
    digest = entries_digest(receipts)
    full = shuffle(receipts, seed=SEED, digest=digest, beacon=None)
    drbg = Drbg(SEED, digest, None)
    a = list(receipts)
    for i in range(5):
        j = i + drbg.uniform_below(len(a) - i)
        a[i], a[j] = a[j], a[i]
    assert a[:5] == full[:5]


# --- uniformity of the draw -----------------------------------------------------------------

ENTRANTS, DRAWS, SUPPLY = 20, 2000, 5


def naive_shuffle(items: list[str], drbg: Drbg) -> None:
    """The classic wrong shuffle (swap with any position): biased, used to show test power."""
    n = len(items)
    for i in range(n):
        j = drbg.uniform_below(n)
        items[i], items[j] = items[j], items[i]


def tally(shuffler: Callable[[list[str], Drbg], None]) -> tuple[list[int], list[list[int]]]:
    """Win counts per entrant and (entrant, position) counts over DRAWS seeded draws."""
    receipts = receipts_for("uniformity", ENTRANTS)
    index = {r: i for i, r in enumerate(receipts)}
    digest = entries_digest(receipts)
    wins = [0] * ENTRANTS
    positions = [[0] * ENTRANTS for _ in range(ENTRANTS)]
    for d in range(DRAWS):
        order = list(receipts)
        shuffler(order, Drbg(hashlib.sha256(b"draw %d" % d).digest(), digest, None))
        for pos, r in enumerate(order):
            positions[index[r]][pos] += 1
        for r in order[:SUPPLY]:
            wins[index[r]] += 1
    return wins, positions


def win_statistic(wins: list[int]) -> float:
    """Chi-square(N - 1) statistic for the win counts.

    A draw picks SUPPLY distinct winners, so the counts are not multinomial: each has
    variance D p (1 - p) and they are negatively correlated. Their covariance is
    D p (1 - p) N / (N - 1) times the projection orthogonal to (1, ..., 1), so the sum of
    squared deviations divided by that factor is chi-square with N - 1 degrees of freedom.
    (Plain Pearson would be smaller by (1 - p) N / (N - 1) and the test too lenient.)
    """
    n, p = ENTRANTS, SUPPLY / ENTRANTS
    scale = DRAWS * p * (1 - p) * n / (n - 1)
    return sum((w - DRAWS * p) ** 2 for w in wins) / scale


def position_statistic(positions: list[list[int]]) -> float:
    """Chi-square((N - 1)^2) statistic for the entrant-by-position table.

    Each draw adds a permutation matrix, whose cells have covariance 1 / (N - 1) times the
    projection removing row and column means, so Pearson's statistic times (N - 1) / N is
    chi-square with (N - 1)^2 degrees of freedom.
    """
    cells = [c for row in positions for c in row]
    return pearson(cells, DRAWS / ENTRANTS) * (ENTRANTS - 1) / ENTRANTS


@pytest.fixture(scope="module")
def fair_tally() -> tuple[list[int], list[list[int]]]:
    return tally(shuffle_in_place)


def test_each_entrant_wins_equally_often(fair_tally: tuple[list[int], list[list[int]]]) -> None:
    wins, _ = fair_tally
    assert sum(wins) == DRAWS * SUPPLY
    assert win_statistic(wins) < chi2_critical(ENTRANTS - 1), wins


def test_each_entrant_is_equally_likely_at_each_position(
    fair_tally: tuple[list[int], list[list[int]]],
) -> None:
    _, positions = fair_tally
    assert all(sum(row) == DRAWS for row in positions)
    assert position_statistic(positions) < chi2_critical((ENTRANTS - 1) ** 2)


def test_the_uniformity_checks_catch_a_biased_shuffle() -> None:
    wins, positions = tally(naive_shuffle)
    assert win_statistic(wins) > 2 * chi2_critical(ENTRANTS - 1)
    assert position_statistic(positions) > 1.5 * chi2_critical((ENTRANTS - 1) ** 2)


# --- proof ----------------------------------------------------------------------------------


def test_build_proof() -> None:
    receipts = receipts_for("p", 30)
    moment = datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    proof = build_proof("p", SEED, reversed(receipts), 4, beacon=BEACON, drawn_at=moment)
    digest = entries_digest(receipts)
    order = shuffle(receipts, seed=SEED, digest=digest, beacon=BEACON)
    assert proof == Proof(
        drop_id="p",
        algorithm=ALGORITHM,
        commitment=commitment(SEED),
        seed=SEED.hex(),
        entries_digest=digest,
        entry_count=30,
        beacon=BEACON,
        supply=4,
        winners=order[:4],
        waitlist=order[4:],
        drawn_at="2024-05-01T12:00:00.123Z",
    )


@pytest.mark.parametrize(("n", "supply"), [(0, 3), (2, 3), (3, 3), (5, 0)])
def test_build_proof_edge_sizes(n: int, supply: int) -> None:
    proof = build_proof("d", SEED, receipts_for("d", n), supply, drawn_at="2024-01-01T00:00:00Z")
    assert len(proof.winners) == min(n, supply)
    assert len(proof.waitlist) == n - len(proof.winners)
    assert proof.drawn_at == "2024-01-01T00:00:00Z"


def test_build_proof_rejects_bad_input() -> None:
    receipts = receipts_for("d", 3)
    with pytest.raises(ValueError, match="duplicate"):
        build_proof("d", SEED, [*receipts, receipts[0]], 1)
    with pytest.raises(ValueError, match="non-negative"):
        build_proof("d", SEED, receipts, -1)
    with pytest.raises(ValueError, match="timezone"):
        build_proof("d", SEED, receipts, 1, drawn_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="32 bytes"):
        build_proof("d", b"short", receipts, 1)


def test_proof_json_round_trip() -> None:
    proof = build_proof("d", SEED, receipts_for("d", 12), 3, drawn_at=datetime.now(UTC))
    text = proof.to_json()
    assert list(json.loads(text)) == [
        "drop_id",
        "algorithm",
        "commitment",
        "seed",
        "entries_digest",
        "entry_count",
        "beacon",
        "supply",
        "winners",
        "waitlist",
        "drawn_at",
    ]
    assert Proof.from_json(text) == proof
    assert Proof.from_json(proof.to_json(indent=2).encode()) == proof
    undrawn = Proof(
        drop_id="d", commitment=commitment(SEED), entries_digest="", entry_count=0, supply=1
    )
    assert Proof.from_json(undrawn.to_json()) == undrawn
    assert json.loads(undrawn.to_json())["seed"] is None


def test_proof_from_json_names_schema_problems() -> None:
    good = json.loads(build_proof("d", SEED, receipts_for("d", 3), 1).to_json())
    with pytest.raises(ProofFormatError, match="not valid JSON"):
        Proof.from_json("{")
    with pytest.raises(ProofFormatError, match="JSON object"):
        Proof.from_json("[]")
    cases = {
        "seed": ("missing", "'seed' is missing"),
        "entry_count": (True, "'entry_count' must be a non-negative integer"),
        "supply": (-1, "'supply' must be a non-negative integer"),
        "winners": (["a", 1], "'winners' must be a list of strings"),
        "beacon": (5, "'beacon' must be a string or null"),
        "drop_id": (None, "'drop_id' must be a string"),
    }
    for name, (value, message) in cases.items():
        bad = dict(good)
        if value == "missing":
            del bad[name]
        else:
            bad[name] = value
        with pytest.raises(ProofFormatError, match=message):
            Proof.from_dict(bad)
    assert Proof.from_dict({**good, "future_field": 1}) == Proof.from_dict(good)
