"""Which callback URLs may be called, and at which address (the SSRF guard).

At submit, ``validate_callback_url`` checks the URL's form, that its host matches
``webhooks.allowed_hosts`` and, for an address written in the URL, that it is public. At each
delivery, ``resolve`` looks the host up and refuses the call if any address it resolves to is
loopback, private, link-local, multicast, reserved or unspecified (``webhooks.allow_private``
lifts that); the call then connects to the address checked (``transport``), so a DNS answer
that changes between the check and the connect (rebinding) cannot send it elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

from steadyvoice.errors import CallbackUrlRefused
from steadyvoice.settings import Settings, WebhookSettings

MAX_URL_CHARS = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]


@dataclass(frozen=True)
class Target:
    """A callback URL taken apart: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str
    port: int
    path: str  # with the query


def validate_callback_url(url: str, settings: Settings, tenant: str | None = None) -> str:
    """``url`` if it may be a callback, else ``callback_url_refused`` (422) with a ``reason``.

    For the job and batch routes: call it on the request's ``callback_url`` before anything
    is recorded. With ``tenant``, also refuses a tenant that has no signing secret
    (``webhooks.secrets``): its callbacks could not be signed. No DNS lookup happens here; the
    resolved addresses are checked at each delivery.
    """
    target = parse(url)
    cfg = settings.webhooks
    if not host_allowed(target.host, cfg.allowed_hosts):
        raise _refused(
            f"host {target.host!r} is not in webhooks.allowed_hosts", "host_not_allowed", url
        )
    literal = _literal_address(target.host)
    if literal is not None and not address_allowed(literal, cfg):
        raise _refused(f"{literal} is not a public address", "address_not_public", url)
    if tenant is not None and tenant not in cfg.secrets:
        raise _refused(
            f"tenant {tenant!r} has no webhook signing secret (webhooks.secrets)",
            "no_signing_secret",
            url,
        )
    return target.url


def parse(url: str) -> Target:
    """The parts of an absolute http(s) URL with no credentials; ``callback_url_refused``."""
    if len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
        raise _refused(
            "the URL is too long or holds spaces or control characters", "malformed", url
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refused("the URL cannot be parsed", "malformed", url) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refused("the URL must be absolute http:// or https://", "malformed", url)
    if parts.username is not None or parts.password is not None:
        raise _refused("the URL must not hold credentials", "malformed", url)
    return Target(
        url=url,
        scheme=parts.scheme,
        host=parts.hostname.rstrip(".").lower(),
        port=port or (443 if parts.scheme == "https" else 80),
        path=_path(parts),
    )


def host_allowed(host: str, allowed: list[str]) -> bool:
    """``host`` equals an entry, or ends with ``.example.com`` for an entry ``*.example.com``."""
    for entry in allowed:
        entry = entry.strip().rstrip(".").lower()
        if entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]:
            return True
        if host == entry:
            return True
    return False


def address_allowed(address: Address, cfg: WebhookSettings) -> bool:
    """A public unicast address, or any address under ``webhooks.allow_private``."""
    if cfg.allow_private:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_site_local:  # fec0::/10: deprecated, but still routed inside some sites
            return False
        if not all(_public(v4) for v4 in _embedded_ipv4(address)):
            return False
    return _public(address)


def _public(address: Address) -> bool:
    return not (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 one carries (::ffff:a.b.c.d, 6to4, Teredo, NAT64): a gateway
    on the way delivers it there, so it is judged as those addresses too."""
    if address.ipv4_mapped is not None:
        return [address.ipv4_mapped]
    if address.sixtofour is not None:
        return [address.sixtofour]
    if address.teredo is not None:
        return list(address.teredo)  # (server, client); the client is where it goes
    if address in _NAT64:
        return [ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)]
    return []


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the operating system's resolver)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve(target: Target, cfg: WebhookSettings, resolver: Resolver = system_resolver) -> str:
    """The address to connect to: the first ``target.host`` resolves to, once every one is
    allowed. ``AddressRefused`` if any is not (a host with one private address among public
    ones is refused whole: which one a client gets is the resolver's choice, not ours)."""
    literal = _literal_address(target.host)
    found = [str(literal)] if literal is not None else resolver(target.host, target.port)
    if not found:
        raise AddressRefused(f"{target.host} resolves to no address")
    for text in found:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not address_allowed(address, cfg):
            raise AddressRefused(f"{target.host} resolves to {address}, not a public address")
    return found[0]


class AddressRefused(Exception):
    """The callback's host resolves to an address it may not be sent to (delivery: no retry)."""


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _path(parts: SplitResult) -> str:
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _refused(message: str, reason: str, url: str) -> CallbackUrlRefused:
    return CallbackUrlRefused(f"callback_url refused: {message}", reason=reason, url=url[:200])
