"""Trusted proxies and the client address their X-Forwarded-For names (issue 22, item 5)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steadyvoice.security.proxies import TrustedProxies, parse_address

LOCAL = ipaddress.ip_address("127.0.0.1")
PROXIES = TrustedProxies.parse("127.0.0.1, 10.0.0.0/8, fd00::/8")


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:51234", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("2001:DB8:0::1", "2001:db8::1"),
    ],
)
def test_addresses_are_read_in_their_usual_forms(text: str, address: str) -> None:
    assert str(parse_address(text)) == address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<script>alert(1)</script>",
        "\x1b[31m203.0.113.7",
        "203.0.113.7\t<b>",
        "203.0.113.7\x85",
        "unknown",
        "example.com",
        "fe80::1%eth0",
        "999.1.1.1",
        "[2001:db8::1",
    ],
)
def test_anything_else_is_no_address(text: str) -> None:
    assert parse_address(text) is None


@pytest.mark.parametrize(
    ("forwarded", "client", "clean"),
    [
        ("203.0.113.7", "203.0.113.7", True),
        ("198.51.100.1, 203.0.113.7", "203.0.113.7", True),  # the right-most untrusted hop
        ("198.51.100.1, 203.0.113.7, 10.1.2.3", "203.0.113.7", True),  # past our proxies
        ("10.9.9.9, 10.1.2.3", "10.9.9.9", True),  # all trusted: the left-most
        ("<script>", "127.0.0.1", False),  # forged: the peer itself
        ("203.0.113.7, <script>", "127.0.0.1", False),
        ("<script>, 203.0.113.7", "203.0.113.7", True),  # the planted part is never reached
        ("203.0.113.7, \x1b[2J, 10.1.2.3", "10.1.2.3", False),  # the last address known
        ("", "127.0.0.1", False),
    ],
)
def test_the_client_is_the_right_most_untrusted_hop(
    forwarded: str, client: str, clean: bool
) -> None:
    assert PROXIES.client(LOCAL, forwarded) == (ipaddress.ip_address(client), clean)


def test_every_peer_trusted_with_a_star() -> None:
    everyone = TrustedProxies.parse("*")
    assert everyone.trusts(ipaddress.ip_address("192.0.2.1"))
    assert everyone.client(LOCAL, "198.51.100.1, 203.0.113.7") == (
        ipaddress.ip_address("198.51.100.1"),
        True,
    )


@pytest.mark.parametrize("spec", ["nginx", "127.0.0.1, localhost", "10.0.0.0/33", "*, 10.0.0.1"])
def test_a_proxy_that_is_no_address_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        TrustedProxies.parse(spec)


@given(st.text(max_size=200))
def test_whatever_the_header_the_client_is_an_address(forwarded: str) -> None:
    client, _ = PROXIES.client(LOCAL, forwarded)
    assert ipaddress.ip_address(str(client)) == client
