"""Where a webhook may be POSTed: public http(s) destinations only, never the service's own machine or network.

A partner chooses the URL, and the service POSTs to it from inside the programme's network, so a URL naming
127.0.0.1, 169.254.169.254 (a cloud's metadata service) or a private address would turn the webhook worker into
the partner's way in. The policy decides on the address, not on the spelling: a host that is an IP literal in any
form a resolver accepts (`2130706433`, `0x7f000001`, `0177.0.0.1`, `127.1`, `[::ffff:127.0.0.1]`, an IPv6 address
embedding an IPv4 one) is judged as the address it names; a host name is resolved and refused if ANY of its
addresses is forbidden. The caller then connects to the address that was checked (webhooks.py), so a name cannot
resolve to a public address for the check and to a private one for the connection.

No I/O here but the resolver, which is injected (tests give a fake one). Refusals are
`RuleViolation("webhook_destination", ...)`, whose detail says why in plain words and names nothing internal.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from fivecogs_shared.errors import RuleViolation

RULE = "webhook_destination"
RESOLVE_SECONDS = 5.0
DEFAULT_PORTS = {"http": 80, "https": 443}

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
# (host, port) -> the addresses the name resolves to, as text (e.g. "93.184.216.34", "2606:2800::1").
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

# A host name: dot-separated labels of letters, digits, '-' and '_' (some real names use it), maybe a final dot.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?")
# What makes a label a number to inet_aton and to WHATWG URL parsers: a host whose last label looks like this
# is an IPv4 literal or nothing, never a name to look up (no top-level domain is numeric).
_NUMERIC = re.compile(r"0x[0-9a-f]*|[0-9]+")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are the IPv4 destination
_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # RFC 6598, carrier-grade NAT
_PRIVATE = tuple(ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.IPv6Network("fc00::/7")
_DOCUMENTATION = tuple(
    ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
)
_BROADCAST = ipaddress.IPv4Address("255.255.255.255")


class Unresolved(Exception):
    """The name did not resolve (no such name, no answer in time): not a verdict on the destination. A send
    retries it later; a subscription is refused, since nothing can be checked."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def refused(detail: str) -> RuleViolation:
    return RuleViolation(RULE, detail)


@dataclass(frozen=True)
class Target:
    """A URL taken apart: what to ask for (scheme, host, port, path) before any name is resolved."""

    scheme: str
    host: str  # lower case; an IPv6 literal without its brackets
    port: int
    path: str  # path and query, at least "/" (a fragment is never sent)
    literal: Address | None  # the address the host spells, if it is an IP literal in any encoding

    @property
    def host_header(self) -> str:
        """The `Host` header, as the URL names the host (the port only when it is not the scheme's default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


@dataclass(frozen=True)
class Destination:
    """A checked target: the address to connect to, and the name to ask for there (Host header, TLS name)."""

    target: Target
    address: Address

    @property
    def tls_name(self) -> str:
        """The name TLS asks for and verifies the certificate against: the host name (without a final dot), or
        for an IP literal the address in its usual form (the certificate then names the IP)."""
        return self.target.host.removesuffix(".") if self.target.literal is None else str(self.address)

    @property
    def connect_url(self) -> str:
        """The URL with the checked address in place of the host: the connection can go nowhere else."""
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{self.target.scheme}://{host}:{self.target.port}{self.target.path}"


@dataclass(frozen=True)
class DestinationPolicy:
    """The one policy for subscriptions and sends. `allow_loopback` admits 127.0.0.0/8 and ::1, for tests and a
    developer's machine only (WebhookSettings refuses it outside development)."""

    allow_loopback: bool = False
    resolver: Resolver | None = None  # None: the system's (`loop.getaddrinfo`)
    resolve_seconds: float = RESOLVE_SECONDS

    async def check(self, url: str) -> Destination:
        """The destination to connect to, or `RuleViolation` (refused) or `Unresolved` (the name gave nothing)."""
        target = parse(url)
        if target.literal is not None:
            return Destination(target, self.judge(target.host, target.literal, resolved=False))
        addresses = await self._resolve(target)
        checked = [self.judge(target.host, address, resolved=True) for address in addresses]
        return Destination(target, checked[0])

    def judge(self, host: str, address: Address, *, resolved: bool) -> Address:
        """The address to connect to (an IPv4-mapped one as its IPv4 address), or `RuleViolation`."""
        connect = _unmapped(address)
        if connect.is_loopback and self.allow_loopback:
            return connect
        why = forbidden(address)
        if why is None:
            return connect
        if resolved:
            raise refused(f"{host} resolves to {address}, {why}")
        if host == str(address) or address.version == 6:  # only an IPv4 encoding needs spelling out
            raise refused(f"{_host_text(host)} is {why}")
        raise refused(f"{_host_text(host)} is {address}, {why}")  # 2130706433 is 127.0.0.1, a loopback address

    async def _resolve(self, target: Target) -> list[Address]:
        resolve = self.resolver or system_resolver
        try:
            async with asyncio.timeout(self.resolve_seconds):
                answers = await resolve(target.host, target.port)
        except TimeoutError:
            raise Unresolved(f"{target.host} did not resolve within {self.resolve_seconds:g}s") from None
        except (OSError, UnicodeError):  # socket.gaierror (no such name, no answer), an IDNA label too long
            raise Unresolved(f"{target.host} does not resolve") from None
        addresses = [_address(a) for a in answers]
        if not addresses:
            raise Unresolved(f"{target.host} does not resolve")
        return addresses


async def system_resolver(host: str, port: int) -> list[str]:
    """Every A and AAAA address of `host`, as the system resolves it (/etc/hosts, DNS)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _address(text: str) -> Address:
    # A link-local answer may come with its scope ("fe80::1%eth0"): the address decides, not the interface.
    return ipaddress.ip_address(text.split("%", 1)[0])


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- the URL -------------------------------------------------------------------------------------------------


def parse(url: str) -> Target:
    """The target of an http(s) URL, or `RuleViolation`: no credentials, a host, a valid port."""
    try:
        parts = urlsplit(url)
    except ValueError:
        raise refused("the webhook URL cannot be read as a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise refused(f"the webhook URL must start with http:// or https://, not {scheme or 'nothing'}")
    if "@" in parts.netloc:
        # Credentials in a URL end up in logs and proxies; notices are signed instead (webhook-signature).
        raise refused("the webhook URL carries a user name or password (user:pass@): fivecogs signs notices instead")
    host, port = _host_and_port(parts.netloc, DEFAULT_PORTS[scheme])
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port, path, _literal(host))


def _host_and_port(netloc: str, default: int) -> tuple[str, int]:
    if netloc.startswith("["):  # an IPv6 literal: "[::1]" or "[::1]:8080", nothing else after the bracket
        host, bracket, rest = netloc[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise refused("the webhook URL has a malformed IPv6 address")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = netloc.partition(":")
    if not host:
        raise refused("the webhook URL has no host")
    return host.lower(), _port(port_text, default)


def _port(text: str, default: int) -> int:
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 65536:
        raise refused(f"the webhook URL has an invalid port {text[:20]!r}")
    return int(text)


def _literal(host: str) -> Address | None:
    """The address an IP-literal host names, in every form resolvers accept; None for a host name."""
    if ":" in host:
        return _ipv6_literal(host)
    if not _HOST_NAME.fullmatch(host):
        raise refused(f"the webhook URL's host {host[:100]!r} is not a valid host name")
    labels = host.removesuffix(".").split(".")
    if not _NUMERIC.fullmatch(labels[-1]):
        return None
    address = _inet_aton(labels)
    if address is None:
        raise refused(f"{host[:100]} is neither a valid IPv4 address nor a host name")
    return address


def _ipv6_literal(host: str) -> ipaddress.IPv6Address:
    # A zone ("%25eth0") names an interface of this machine, never a partner's destination.
    if "%" not in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            pass
    raise refused(f"{_host_text(host)[:100]} is not a valid IPv6 address")


def _inet_aton(labels: list[str]) -> ipaddress.IPv4Address | None:
    """IPv4 as inet_aton(3) reads it: 1 to 4 parts, each decimal, 0x-hex or 0-octal; the last fills the rest
    (`127.1` is 127.0.0.1, `2130706433` is one 32-bit number)."""
    if len(labels) > 4:
        return None
    values = [_number(label) for label in labels]
    if any(v is None for v in values):
        return None
    *leading, last = [v for v in values if v is not None]
    if any(v > 255 for v in leading) or last >= 256 ** (4 - len(leading)):
        return None
    number = last
    for i, v in enumerate(leading):
        number += v << (8 * (3 - i))
    return ipaddress.IPv4Address(number)


def _number(label: str) -> int | None:
    try:
        if label.startswith("0x"):
            return int(label[2:] or "0", 16)
        if len(label) > 1 and label.startswith("0"):
            return int(label[1:], 8)
        return int(label, 10)
    except ValueError:  # "09" (not octal), "0xg"
        return None


# --- the address ----------------------------------------------------------------------------------------------


def forbidden(address: Address) -> str | None:
    """Why a webhook must not go to `address` ("a loopback address"...), or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address):
        return _forbidden_v6(address)
    return _forbidden_v4(address)


def _forbidden_v4(a: ipaddress.IPv4Address) -> str | None:
    # Named kinds first, so the partner reads what is wrong; `is_global` catches every other special range.
    checks: list[tuple[bool, str]] = [
        (a.is_unspecified, "an unspecified address"),
        (a.is_loopback, "a loopback address"),
        (a == _BROADCAST, "the broadcast address"),
        (a.is_link_local, "a link-local address"),
        (a.is_multicast, "a multicast address"),
        (any(a in n for n in _PRIVATE), "a private address"),
        (a in _SHARED, "a shared address (carrier-grade NAT)"),
        (any(a in n for n in _DOCUMENTATION), "a documentation address"),
        (a.is_reserved, "a reserved address"),
        (not a.is_global, "not a public address"),
    ]
    return next((why for hit, why in checks if hit), None)


def _forbidden_v6(a: ipaddress.IPv6Address) -> str | None:
    embedded = _embedded_v4(a)
    if a.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 host itself
        why = _forbidden_v4(a.ipv4_mapped)
        return None if why is None else f"an IPv4-mapped form of {a.ipv4_mapped}, {why}"
    if embedded is not None and (why := _forbidden_v4(embedded)) is not None:
        return f"an address embedding {embedded}, {why}"
    if a in _NAT64:  # a translator delivers it to its (public, just checked) IPv4 address
        return None
    checks: list[tuple[bool, str]] = [
        (a.is_unspecified, "an unspecified address"),
        (a.is_loopback, "a loopback address"),
        (a.is_link_local, "a link-local address"),
        (a.is_multicast, "a multicast address"),
        (a in _UNIQUE_LOCAL, "a unique local address"),
        (a.is_site_local, "a site-local address"),
        (any(a in n for n in _DOCUMENTATION), "a documentation address"),
        (a.is_reserved, "a reserved address"),  # ::/8 holds the IPv4-compatible form
        (not a.is_global, "not a public address"),
    ]
    return next((why for hit, why in checks if hit), None)


def _embedded_v4(a: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries to its destination: NAT64 (64:ff9b::/96), 6to4 (2002::/16), the
    deprecated IPv4-compatible form (::a.b.c.d). Teredo (2001::/32) is refused as not public anyway."""
    number = int(a)
    if a in _NAT64 or (number >> 32 == 0 and number > 1):
        return ipaddress.IPv4Address(number & 0xFFFFFFFF)
    return a.sixtofour


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
