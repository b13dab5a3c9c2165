"""Who won: the fairness report's math, from the server's own orders and stats.

Pure functions, no I/O, so the unit tests cover them without a server.

Definitions
-----------
- A *unit* is a live order (``held`` or ``confirmed``); expired and cancelled ones won nothing.
- Persons are classified by their id: ``human-<n>``, ``bot-<n>``; anything else is ``other``
  (it should not appear: the report lists it).
- ``win_rate_ratio`` = (bot units / bot persons) / (human units / human persons): 1.0 is fair,
  above 1 favours bots. Every simulated person counts, winners or not.
- ``oversold`` = units allocated beyond supply, the largest of: live orders beyond supply;
  serials sold twice or outside ``1..supply``; the server's held + confirmed beyond supply
  (or a negative ``remaining``). It must be 0.
- ``bot_extra_account_wins`` = sum over bot persons of (units - 1) where positive: units a
  person got through its extra accounts.

Confidence interval of the ratio (95%)
--------------------------------------
When every person holds at most one unit (lottery, fair start, FCFS with one per person), the
interval is exact and conditional on the number of winning persons W: a drop favouring bots by
odds omega makes the number of winning bot persons follow Fisher's noncentral hypergeometric
law; the equal-tailed interval for omega (as R's ``fisher.test``) is mapped onto the ratio
scale (see :func:`exact_interval`). It covers 1 exactly when the permutation test of "the class
does not matter" does not reject at 5%, and its coverage is at least 95% whatever the sizes
(:func:`ci_false_alarm_rate` gives the exact false-alarm chance for a crowd). It needs no seed.
``exact_test_p`` is that test's two-sided p-value.

Otherwise (a person may hold several units, as in the unprotected baseline), a stratified
percentile bootstrap over persons: humans and bots are resampled separately, with replacement,
as many as there are, and the ratio of the resampled means is taken; the interval is the 2.5th
and 97.5th percentiles (nearest rank) of ``BOOTSTRAP_REPLICATES`` replicates from a
``random.Random`` seeded by the run's seed, so a report is reproducible. Replicates where
neither class won anything (0/0) are dropped; those with humans at 0 count as +inf. When one
class won nothing at all every replicate is degenerate, so the open end is bounded with the
rule of three instead: with ``n`` persons and no unit won, the 95% upper bound of the
per-person win probability is ``3/n``, and a person holds at most ``max`` units (1 for a
human, who buys once; the per-person limit for a bot). So with no human units:
CI = [bot rate / (3/n_h * 1), +inf]; with no bot units: CI = [0, (3/n_b * max) / human rate].

JSON has no infinity: ratios are written as numbers, ``"inf"``, or ``null`` (0/0).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtest.crowd import BOT_PREFIX, HUMAN_PREFIX

HUMAN, BOT, OTHER = "human", "bot", "other"
LIVE_STATUSES = frozenset({"held", "confirmed"})
BOOTSTRAP_REPLICATES = 4000
LEVEL = 0.95


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    serial: int
    status: str
    account: str
    person: str

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


def classify(person: str) -> str:
    if person.startswith(HUMAN_PREFIX) and person[len(HUMAN_PREFIX) :].isdigit():
        return HUMAN
    if person.startswith(BOT_PREFIX) and person[len(BOT_PREFIX) :].isdigit():
        return BOT
    return OTHER


def parse_orders(raw: Iterable[Mapping[str, Any]]) -> list[Order]:
    """The listing's orders, deduplicated by order id (HSCAN may return one twice; the later
    copy wins, as it may carry a newer status)."""
    by_id: dict[str, Order] = {}
    for o in raw:
        by_id[o["order_id"]] = Order(
            order_id=o["order_id"],
            serial=int(o["serial"]),
            status=o["status"],
            account=o.get("account", ""),
            person=o["person"],
        )
    return list(by_id.values())


def units_by_person(orders: Iterable[Order]) -> Counter[str]:
    return Counter(o.person for o in orders if o.live)


# --- oversold ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Oversold:
    units: int
    live_orders: int
    beyond_supply: int
    duplicate_serials: int
    serials_out_of_range: int
    stats_beyond_supply: int
    orders_vs_stats: int  # live orders minus the server's held + confirmed: should be 0

    def to_json(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def oversold(orders: Sequence[Order], supply: int, stats: Mapping[str, Any]) -> Oversold:
    live = [o for o in orders if o.live]
    serials = Counter(o.serial for o in live)
    duplicates = sum(n - 1 for n in serials.values() if n > 1)
    out_of_range = sum(1 for o in live if not 1 <= o.serial <= supply)
    held_confirmed = int(stats.get("held", 0)) + int(stats.get("confirmed", 0))
    remaining = int(stats.get("remaining", 0))
    stats_excess = max(0, held_confirmed - supply, -remaining)
    beyond = max(0, len(live) - supply)
    return Oversold(
        units=max(beyond, duplicates + out_of_range, stats_excess),
        live_orders=len(live),
        beyond_supply=beyond,
        duplicate_serials=duplicates,
        serials_out_of_range=out_of_range,
        stats_beyond_supply=stats_excess,
        orders_vs_stats=len(live) - held_confirmed,
    )


# --- the ratio and its interval ----------------------------------------------------------------


def ratio(bot_units: float, bot_persons: int, human_units: float, human_persons: int) -> float:
    """Units per bot person over units per human person: inf if only bots won, nan if nobody."""
    if bot_persons <= 0 or human_persons <= 0:
        return math.nan
    bot_rate = bot_units / bot_persons
    human_rate = human_units / human_persons
    if human_rate == 0:
        return math.inf if bot_rate > 0 else math.nan
    return bot_rate / human_rate


@dataclass(frozen=True, slots=True)
class Interval:
    low: float
    high: float
    method: str
    dropped_replicates: int = 0

    def covers(self, value: float) -> bool:
        return self.low <= value <= self.high


def ratio_interval(
    human_units: Sequence[int],
    bot_units: Sequence[int],
    *,
    seed: int,
    human_max: int = 1,
    bot_max: int = 1,
    level: float = LEVEL,
) -> Interval:
    """95% interval of :func:`ratio` from per-person unit counts (see the module docstring):
    exact when every person holds at most one unit, else a bootstrap."""
    if not human_units or not bot_units:
        return Interval(0.0, math.inf, "undefined: a class has no persons")
    if all(v in (0, 1) for v in (*human_units, *bot_units)):
        return exact_interval(
            persons=len(human_units) + len(bot_units),
            bots=len(bot_units),
            winners=sum(human_units) + sum(bot_units),
            bot_winners=sum(bot_units),
            level=level,
        )
    return bootstrap_interval(
        human_units, bot_units, seed=seed, human_max=human_max, bot_max=bot_max, level=level
    )


# The exact conditional interval. Given W winning persons among N (B of them bots), a drop that
# favours bots by odds omega gives X = winning bots Fisher's noncentral hypergeometric law:
# P(X = k) ~ C(B, k) C(N - B, W - k) omega^k. The equal-tailed interval for omega (as R's
# fisher.test) maps onto the ratio through r(omega) = (E[X]/B) / ((W - E[X])/(N - B)), which
# increases with omega and is exactly 1 at omega = 1: the interval covers 1 if and only if the
# exact (permutation) test of "class does not matter" does not reject at the 5% level.


class _Conditional:
    def __init__(self, persons: int, bots: int, winners: int) -> None:
        humans = persons - bots
        self.persons, self.bots, self.winners = persons, bots, winners
        self.ks = list(range(max(0, winners - humans), min(bots, winners) + 1))
        self.log_base = [
            math.log(math.comb(bots, k)) + math.log(math.comb(humans, winners - k)) for k in self.ks
        ]

    def probabilities(self, log_omega: float) -> list[float]:
        terms = [b + k * log_omega for b, k in zip(self.log_base, self.ks, strict=True)]
        top = max(terms)
        weights = [math.exp(t - top) for t in terms]
        total = sum(weights)
        return [w / total for w in weights]

    def tails(self, log_omega: float, k_obs: int) -> tuple[float, float]:
        """(P(X <= k_obs), P(X >= k_obs))."""
        probs = self.probabilities(log_omega)
        below = sum(p for k, p in zip(self.ks, probs, strict=True) if k <= k_obs)
        above = sum(p for k, p in zip(self.ks, probs, strict=True) if k >= k_obs)
        return below, above

    def ratio_at(self, log_omega: float) -> float:
        expected = sum(k * p for k, p in zip(self.ks, self.probabilities(log_omega), strict=True))
        return ratio(expected, self.bots, self.winners - expected, self.persons - self.bots)

    def solve(self, k_obs: int, target: float, upper_tail: bool) -> float:
        """log omega where the chosen tail at k_obs equals target (the tail is monotone)."""
        lo, hi = -60.0, 60.0
        for _ in range(200):
            mid = (lo + hi) / 2
            below, above = self.tails(mid, k_obs)
            # P(X >= k) increases with omega; P(X <= k) decreases.
            if (above < target) if upper_tail else (below > target):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2


def exact_interval(
    *, persons: int, bots: int, winners: int, bot_winners: int, level: float = LEVEL
) -> Interval:
    method = "exact conditional (Fisher noncentral hypergeometric, equal tails)"
    humans = persons - bots
    if winners == 0:
        return Interval(0.0, math.inf, method + ": nobody won")
    model = _Conditional(persons, bots, winners)
    if len(model.ks) == 1:  # every outcome is forced (e.g. everyone won)
        r = ratio(bot_winners, bots, winners - bot_winners, humans)
        return Interval(r, r, method)
    alpha = (1 - level) / 2
    if bot_winners <= model.ks[0]:
        low = ratio(model.ks[0], bots, winners - model.ks[0], humans)
    else:
        low = model.ratio_at(model.solve(bot_winners, alpha, upper_tail=True))
    if bot_winners >= model.ks[-1]:
        high = ratio(model.ks[-1], bots, winners - model.ks[-1], humans)
    else:
        high = model.ratio_at(model.solve(bot_winners, alpha, upper_tail=False))
    return Interval(low, high, method)


def exact_test_p(persons: int, bots: int, winners: int, bot_winners: int) -> float:
    """Two-sided exact p-value of "class does not matter" (twice the smaller tail, as the
    equal-tailed interval: p < 0.05 exactly when the interval excludes 1)."""
    if winners == 0:
        return 1.0
    below, above = _Conditional(persons, bots, winners).tails(0.0, bot_winners)
    return min(1.0, 2 * min(below, above))


def _nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def bootstrap_interval(
    human_units: Sequence[int],
    bot_units: Sequence[int],
    *,
    seed: int,
    human_max: int,
    bot_max: int,
    replicates: int = BOOTSTRAP_REPLICATES,
    level: float = LEVEL,
) -> Interval:
    n_h, n_b = len(human_units), len(bot_units)
    h_total, b_total = sum(human_units), sum(bot_units)
    rule = "rule of three (a class won nothing)"
    if h_total == 0 and b_total == 0:
        return Interval(0.0, math.inf, rule)
    if h_total == 0:
        return Interval((b_total / n_b) / (min(1.0, 3.0 / n_h) * human_max), math.inf, rule)
    if b_total == 0:
        return Interval(0.0, min(1.0, 3.0 / n_b) * bot_max / (h_total / n_h), rule)
    rng = random.Random(f"bootstrap:{seed}")
    values: list[float] = []
    dropped = 0
    for _ in range(replicates):
        h = sum(rng.choices(human_units, k=n_h))
        b = sum(rng.choices(bot_units, k=n_b))
        r = ratio(b, n_b, h, n_h)
        if math.isnan(r):
            dropped += 1
        else:
            values.append(r)
    values.sort()
    tail = (1 - level) / 2
    return Interval(
        _nearest_rank(values, tail),
        _nearest_rank(values, 1 - tail),
        f"stratified percentile bootstrap over persons, {replicates} replicates, seed {seed}",
        dropped,
    )


# --- the report --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fairness:
    supply: int
    human_persons: int
    bot_persons: int
    human_units: int
    bot_units: int
    other_units: int
    human_winners: int
    bot_winners: int
    ratio: float
    interval: Interval
    exact_test_p: float | None
    oversold: Oversold
    bot_extra_account_wins: int
    bot_accounts_winning: int
    other_persons: list[str] = field(default_factory=list)

    @property
    def fair(self) -> bool:
        return self.interval.covers(1.0) and self.bot_extra_account_wins == 0


def assess(
    orders: Sequence[Order],
    *,
    humans: Sequence[str],
    bots: Sequence[str],
    supply: int,
    stats: Mapping[str, Any],
    seed: int,
    bot_max: int = 1,
) -> Fairness:
    """``bot_max``: the most units one bot person could win (the drop's per-person limit);
    humans buy at most once by construction."""
    units = units_by_person(orders)
    human_values = [units.get(p, 0) for p in humans]
    bot_values = [units.get(p, 0) for p in bots]
    known = set(humans) | set(bots)
    others = sorted(p for p in units if p not in known)
    bot_set = set(bots)
    winners_accounts = {o.account for o in orders if o.live and o.person in bot_set}
    one_each = all(v <= 1 for v in (*human_values, *bot_values))
    winners = sum(1 for v in (*human_values, *bot_values) if v > 0)
    bot_winners = sum(1 for v in bot_values if v > 0)
    exact = (
        exact_test_p(len(humans) + len(bots), len(bots), winners, bot_winners)
        if one_each and humans and bots
        else None
    )
    return Fairness(
        supply=supply,
        human_persons=len(humans),
        bot_persons=len(bots),
        human_units=sum(human_values),
        bot_units=sum(bot_values),
        other_units=sum(units[p] for p in others),
        human_winners=sum(1 for v in human_values if v > 0),
        bot_winners=bot_winners,
        ratio=ratio(sum(bot_values), len(bots), sum(human_values), len(humans)),
        interval=ratio_interval(human_values, bot_values, seed=seed, bot_max=bot_max),
        exact_test_p=exact,
        oversold=oversold(orders, supply, stats),
        bot_extra_account_wins=sum(max(0, v - 1) for v in bot_values),
        bot_accounts_winning=len(winners_accounts),
        other_persons=others,
    )


def verdict(f: Fairness, expectation: str | None) -> tuple[str, str, bool | None]:
    """(label, sentence, whether the scenario's expectation is met)."""
    lo, hi = f.interval.low, f.interval.high
    numbers = f"ratio {fmt(f.ratio)}, 95% CI [{fmt(lo)}, {fmt(hi)}]"
    if f.oversold.units > 0:
        label = "oversold"
        sentence = f"the server oversold {f.oversold.units} unit(s): {f.oversold.to_json()}"
    elif f.human_units + f.bot_units == 0:
        label = "inconclusive: nothing allocated"
        sentence = "no simulated person won a unit: the rehearsal says nothing about fairness"
    elif f.fair:
        label = "fair"
        sentence = f"{numbers} covers 1; no extra-account wins"
    elif lo > 1:
        label = "unfair: bots favoured"
        sentence = f"{numbers} excludes 1: bots win more per person than humans"
    elif hi < 1:
        label = "unfair: humans favoured"
        sentence = f"{numbers} excludes 1: humans win more per person than bots"
    else:
        label = "unfair: extra-account wins"
        sentence = f"bots won {f.bot_extra_account_wins} unit(s) through extra accounts ({numbers})"
    met: bool | None = None
    if expectation == "bots_win":
        met = f.oversold.units == 0 and f.bot_units > f.human_units and f.ratio > 3
    elif expectation == "fair":
        met = label == "fair"
    return label, sentence, met


def fmt(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.2f}"


def json_number(value: float | None) -> float | str | None:
    """A float for JSON: rounded, ``"inf"`` for infinity, ``None`` for NaN."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return round(value, 4)


def fmt_json(value: Any) -> str:
    """:func:`fmt` of a number as :func:`json_number` wrote it."""
    return fmt(from_json_number(value))


def from_json_number(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, str):
        return float(value)
    return float(value)


def ci_false_alarm_rate(humans: int, bots: int, winners: int, *, seed: int) -> float:
    """Chance that the 95% interval excludes 1 although every person had the same chance.

    The exact distribution under fairness of a draw of ``winners`` persons, one unit each:
    bot winners ~ Hypergeom(persons, bots, winners). The interval is computed for each
    possible outcome with the same seed as a report would use.
    """
    persons = humans + bots
    total = math.comb(persons, winners)
    rate = 0.0
    for k in range(max(0, winners - humans), min(bots, winners) + 1):
        p = math.comb(bots, k) * math.comb(humans, winners - k) / total
        human_values = [1] * (winners - k) + [0] * (humans - (winners - k))
        bot_values = [1] * k + [0] * (bots - k)
        if not ratio_interval(human_values, bot_values, seed=seed).covers(1.0):
            rate += p
    return rate
