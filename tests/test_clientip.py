"""X-Forwarded-For is believed only when it comes through a trusted proxy."""

from __future__ import annotations

import ipaddress

from aiohttp.test_utils import make_mocked_request

from dropserver.clientip import client_ip

PROXIES = (ipaddress.ip_network("10.0.0.0/8"),)


def request(peer: str, forwarded: str | None = None) -> object:
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    req = make_mocked_request("GET", "/", headers=headers)
    req._transport_peername = (peer, 1234)  # type: ignore[attr-defined]
    return req


def test_socket_peer_without_trusted_proxies() -> None:
    assert client_ip(request("203.0.113.9", "1.2.3.4"), ()) == "203.0.113.9"  # type: ignore[arg-type]


def test_untrusted_peer_cannot_claim_an_address() -> None:
    assert client_ip(request("203.0.113.9", "1.2.3.4"), PROXIES) == "203.0.113.9"  # type: ignore[arg-type]


def test_trusted_proxy_passes_the_client_on() -> None:
    assert client_ip(request("10.0.0.5", "198.51.100.7"), PROXIES) == "198.51.100.7"  # type: ignore[arg-type]


def test_rightmost_untrusted_hop_wins_over_spoofed_left_entries() -> None:
    forwarded = "1.1.1.1, 198.51.100.7, 10.0.0.9"  # the client wrote 1.1.1.1 itself
    assert client_ip(request("10.0.0.5", forwarded), PROXIES) == "198.51.100.7"  # type: ignore[arg-type]


def test_garbage_in_the_header_falls_back_to_the_peer() -> None:
    assert client_ip(request("10.0.0.5", "not-an-ip"), PROXIES) == "10.0.0.5"  # type: ignore[arg-type]
