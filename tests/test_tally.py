"""Tally: labelled counts exported as a Prometheus counter at scrape time."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from dropserver.tally import Tally


def exposition(tally: Tally) -> str:
    registry = CollectorRegistry()
    registry.register(tally)
    return generate_latest(registry).decode()


def test_counts_by_label_values_and_exports_them_as_a_counter() -> None:
    tally = Tally("dropserver_things", "Things by outcome", ["drop", "outcome"])
    tally.inc("d1", "ok")
    tally.inc("d1", "ok")
    tally.inc("d1", "sold_out")
    tally.add(5, "d2", "ok")
    assert (tally.value("d1", "ok"), tally.value("d2", "ok"), tally.value("d2", "x")) == (2, 5, 0)
    text = exposition(tally)
    assert "# TYPE dropserver_things_total counter" in text  # as a Counter writes it
    assert 'dropserver_things_total{drop="d1",outcome="ok"} 2.0' in text
    assert 'dropserver_things_total{drop="d1",outcome="sold_out"} 1.0' in text
    assert 'dropserver_things_total{drop="d2",outcome="ok"} 5.0' in text


def test_a_counter_only_goes_up() -> None:
    tally = Tally("dropserver_things", "Things", ["drop"])
    with pytest.raises(ValueError):
        tally.add(-1, "d1")
    assert tally.value("d1") == 0


def test_label_values_must_match_the_labels() -> None:
    tally = Tally("dropserver_things", "Things", ["drop", "outcome"])
    with pytest.raises(ValueError):
        tally.inc("d1")
    with pytest.raises(ValueError):
        tally.add(2, "d1", "ok", "extra")
    assert "dropserver_things_total{" not in exposition(tally)


def test_the_registry_refuses_a_second_tally_of_the_same_name() -> None:
    registry = CollectorRegistry()
    registry.register(Tally("dropserver_things", "Things", ["drop"]))
    with pytest.raises(ValueError):
        registry.register(Tally("dropserver_things", "Things", ["drop"]))
