"""Independent verification of a published draw: ``dropserver verify-draw PROOF ENTRIES``.

Everything is recomputed from the two files alone (no server, no Redis): the seed must open
the commitment, the entry list must be canonical and hash to the committed digest, and the
winners and waitlist must be exactly the shuffle those inputs produce. Also runnable as
``python -m dropserver.lottery.verify PROOF ENTRIES``.
"""

from __future__ import annotations

import argparse
import hashlib
import operator
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice, pairwise
from pathlib import Path

from dropserver.lottery.draw import (
    ALGORITHM,
    Proof,
    ProofFormatError,
    commitment,
    shuffle_in_place,
)
from dropserver.lottery.drbg import Drbg
from dropserver.lottery.ndjson import loads_json, parse_entries

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
_CHUNK = 1 << 16


@dataclass(slots=True)
class VerifyResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    summary: str = ""  # one line describing what was checked, set when ok


def _read(path: str | Path, what: str, problems: list[str]) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        problems.append(f"cannot read the {what} file {str(path)!r}: {exc.strerror or exc}")
        return None


def _load_proof(data: bytes, path: str | Path, problems: list[str]) -> Proof | None:
    try:
        obj = loads_json(data)
    except (ValueError, RecursionError) as exc:
        problems.append(f"the proof file {str(path)!r} is not valid JSON: {exc}")
        return None
    try:
        return Proof.from_dict(obj)
    except ProofFormatError as exc:
        problems.append(f"the proof file {str(path)!r} is not a draw proof: {exc}")
        return None


def _digest(receipts_sorted: list[str]) -> str:
    # The entries digest, recomputed here without EntriesHasher's checks: a tampered list
    # (duplicates, say) still gets a digest, so the mismatch is reported as such.
    h = hashlib.sha256()
    it = iter(receipts_sorted)
    while chunk := list(islice(it, _CHUNK)):
        h.update(("\n".join(chunk) + "\n").encode("ascii"))
    return h.hexdigest()


def _first_difference(label: str, item: str, claimed: list[str], expected: list[str]) -> str | None:
    if claimed == expected:
        return None
    for i, (a, b) in enumerate(zip(claimed, expected, strict=False)):
        if a != b:
            return (
                f"the {label} differ from the recomputed draw at {item} #{i + 1}: "
                f"the proof has {a}, the recomputed draw has {b}"
            )
    return (
        f"the {label} differ from the recomputed draw: the proof lists {len(claimed)}, "
        f"the recomputed draw has {len(expected)}"
    )


def _check_seed(proof: Proof, problems: list[str]) -> bytes | None:
    """The seed bytes if the seed is present, well-formed and opens the commitment."""
    if proof.seed is None:
        problems.append("the proof has no seed: the draw has not been revealed yet")
        return None
    if not _HEX64.fullmatch(proof.seed):
        problems.append("the seed is not 64 lower-case hex characters (32 bytes)")
        return None
    seed = bytes.fromhex(proof.seed)
    opened = commitment(seed)
    if opened != proof.commitment:
        problems.append(
            "the seed does not open the commitment: SHA-256 of the seed (with the "
            f"commit domain) is {opened}, but the proof's commitment is {proof.commitment}"
        )
    return seed


def _check_entries(data: bytes, proof: Proof, problems: list[str]) -> tuple[list[str], str]:
    """The entries in canonical order and their digest; reports format, order and count."""
    parsed = parse_entries(data)
    problems.extend(parsed.problems)
    receipts = parsed.receipts
    if not all(map(operator.lt, receipts, islice(receipts, 1, None))):
        unsorted_at = next(
            (i for i in range(1, len(receipts)) if receipts[i] < receipts[i - 1]), None
        )
        if unsorted_at is not None:
            problems.append(
                "the entries file is not in canonical order (receipts sorted ascending): "
                f"line {parsed.line_of(unsorted_at)} comes before line "
                f"{parsed.line_of(unsorted_at - 1)} in sorted order"
            )
        # Duplicates that are not adjacent are only visible once sorted.
        receipts = sorted(receipts)
        dups = sum(map(operator.eq, receipts, islice(receipts, 1, None)))
        if dups:
            first = next(a for a, b in pairwise(receipts) if a == b)
            problems.append(f"the entries file has {dups} duplicate receipt(s), e.g. {first}")
    if len(receipts) + parsed.bad_lines != proof.entry_count:
        problems.append(
            f"the entries file has {len(receipts) + parsed.bad_lines} entries but the proof "
            f"says entry_count = {proof.entry_count}"
        )
    digest = _digest(receipts)
    if digest != proof.entries_digest:
        problems.append(
            f"the entries digest does not match: the entries file hashes to {digest}, but "
            f"the proof's entries_digest is {proof.entries_digest} (the entry list is not "
            "the one the draw was computed on)"
        )
    return receipts, digest


def _check_counts(proof: Proof, problems: list[str]) -> None:
    want = min(proof.supply, proof.entry_count)
    if len(proof.winners) != want:
        problems.append(
            f"the proof lists {len(proof.winners)} winners, but supply {proof.supply} and "
            f"entry_count {proof.entry_count} mean there must be {want}"
        )
    total = len(proof.winners) + len(proof.waitlist)
    if total != proof.entry_count:
        problems.append(
            f"winners plus waitlist hold {total} receipts, but entry_count is {proof.entry_count}"
        )


def _check_metadata(proof: Proof, problems: list[str]) -> bool:
    """Checks of single fields; False if the draw cannot be recomputed at all."""
    if proof.drawn_at is not None and not _is_rfc3339(proof.drawn_at):
        problems.append(f"drawn_at {proof.drawn_at!r} is not an RFC 3339 timestamp")
    if proof.beacon == "":
        problems.append("the beacon is an empty string (it must be null or non-empty)")
        return False
    if proof.algorithm != ALGORITHM:
        problems.append(
            f"unsupported algorithm {proof.algorithm!r}: this verifier implements {ALGORITHM}"
        )
        return False
    return True


def _is_rfc3339(text: str) -> bool:
    if not _RFC3339.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.upper())
    except ValueError:
        return False
    return True


def verify(proof_path: str | Path, entries_path: str | Path) -> VerifyResult:
    problems: list[str] = []
    proof_data = _read(proof_path, "proof", problems)
    entries_data = _read(entries_path, "entries", problems)
    if proof_data is None or entries_data is None:
        return VerifyResult(ok=False, problems=problems)
    proof = _load_proof(proof_data, proof_path, problems)
    if proof is None:
        return VerifyResult(ok=False, problems=problems)

    can_draw = _check_metadata(proof, problems)
    seed = _check_seed(proof, problems)
    receipts, digest = _check_entries(entries_data, proof, problems)
    _check_counts(proof, problems)
    if can_draw and seed is not None:
        # The draw these files imply: the entries as published, with their own digest.
        order = receipts  # ours (freshly parsed) and not needed after: shuffle in place
        shuffle_in_place(order, Drbg(seed, digest, proof.beacon))
        supply = proof.supply
        for label, item, claimed, expected in (
            ("winners", "winner", proof.winners, order[:supply]),
            ("waitlist entries", "waitlist entry", proof.waitlist, order[supply:]),
        ):
            if msg := _first_difference(label, item, claimed, expected):
                problems.append(msg)

    if problems:
        return VerifyResult(ok=False, problems=problems)
    beacon = "no beacon" if proof.beacon is None else f"beacon {proof.beacon!r}"
    summary = (
        f"OK: {proof.entry_count} entries, {len(proof.winners)} winners, "
        f"{len(proof.waitlist)} on the waitlist (drop {proof.drop_id!r}, {beacon}); the seed "
        "opens the commitment, the entries match the digest, and the draw reproduces exactly."
    )
    return VerifyResult(ok=True, summary=summary)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="dropserver verify-draw",
        description="Recompute a published lottery draw from its proof and entry list.",
    )
    parser.add_argument("proof", help="the draw proof (JSON)")
    parser.add_argument("entries", help="the entry list (NDJSON, one receipt per line)")
    args = parser.parse_args(argv)
    result = verify(args.proof, args.entries)
    if result.ok:
        print(result.summary)
        return 0
    count = len(result.problems)
    print(f"FAILED: {count} problem{'s' if count != 1 else ''} found:", file=sys.stderr)
    for problem in result.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
