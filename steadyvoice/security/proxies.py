"""Which peers are trusted proxies, and the client address their ``X-Forwarded-For`` names.

Only IP addresses are ever believed: a hop that is not one (``<script>``, control characters,
a host name) ends the walk, and the closest address known for certain is used instead.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PORT = re.compile(r":[0-9]{1,5}")
# Hops read from the right of X-Forwarded-For: more than any real chain of proxies.
MAX_HOPS = 32


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (a port after IPv4 ``a.b.c.d:p`` or IPv6 ``[v6]:p`` is
    dropped), or ``None`` if it is anything else."""
    text = text.strip(" \t")  # the list's own spacing; any other character is refused
    if text.startswith("["):
        text, bracket, port = text[1:].partition("]")
        if not bracket or (port and not _PORT.fullmatch(port)):
            return None
    elif text.count(":") == 1:
        text, _, port = text.partition(":")
        if not _PORT.fullmatch(":" + port):
            return None
    if not text or "%" in text:  # IPv6 zone ids name a local interface, never a client
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class TrustedProxies:
    """Addresses and networks whose forwarding headers are believed (``*``: every peer)."""

    networks: tuple[IPNetwork, ...]
    everyone: bool = False

    @classmethod
    def parse(cls, spec: str) -> TrustedProxies:
        """Comma-separated addresses or CIDR networks, or ``*``; ``ValueError`` names a bad one."""
        entries = [e.strip() for e in spec.split(",") if e.strip()]
        if entries == ["*"]:
            return cls((), everyone=True)
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8), "
                    "nor '*' alone"
                ) from None
        return cls(tuple(networks))

    def trusts(self, address: IPAddress | None) -> bool:
        if address is None:
            return False
        return self.everyone or any(address in net for net in self.networks)

    def client(self, peer: IPAddress, forwarded_for: str) -> tuple[IPAddress, bool]:
        """The client a trusted ``peer`` reports: the right-most hop that is not a trusted
        proxy (every hop trusted, ``*`` included: the left-most). Returns it and whether every
        hop read was an address (``False``: a hop was forged or garbled, and the last address
        known for certain was used)."""
        known = peer
        hops = forwarded_for.split(",")[-MAX_HOPS:]
        for hop in reversed(hops):
            address = parse_address(hop)
            if address is None:
                return known, False
            if not self.trusts(address):
                return address, True
            known = address
        return known, True
