"""Which webhook destinations the policy refuses: every spelling of a forbidden address, every forbidden range,
names that resolve to one (any of their addresses), and URLs that are not plain http(s) to a host."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import pytest

from fivecogs_communication import destinations
from fivecogs_communication.destinations import DestinationPolicy, Unresolved
from fivecogs_shared.errors import RuleViolation


def fake_resolver(table: dict[str, Sequence[str]]) -> destinations.Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]

    return resolve


def never_resolves() -> destinations.Resolver:
    async def resolve(host: str, port: int) -> Sequence[str]:
        raise AssertionError(f"an IP literal was looked up: {host}")

    return resolve


STRICT = DestinationPolicy(resolver=never_resolves())


async def refusal(policy: DestinationPolicy, url: str) -> str:
    with pytest.raises(RuleViolation) as refused:
        await policy.check(url)
    assert refused.value.reason == "rule:webhook_destination"
    return refused.value.detail


# Every literal here names a forbidden address; the resolver is never asked (it would fail the test).
LITERALS = [
    # loopback, in each encoding inet_aton and WHATWG URL parsers accept
    ("http://127.0.0.1:8085/h", "127.0.0.1 is a loopback address"),
    ("http://2130706433/", "2130706433 is 127.0.0.1, a loopback address"),
    ("http://0x7f000001/", "0x7f000001 is 127.0.0.1, a loopback address"),
    ("http://0X7F000001/", "0x7f000001 is 127.0.0.1, a loopback address"),
    ("http://0177.0.0.1/", "0177.0.0.1 is 127.0.0.1, a loopback address"),
    ("http://0x7f.0.0.1/", "0x7f.0.0.1 is 127.0.0.1, a loopback address"),
    ("http://127.1/", "127.1 is 127.0.0.1, a loopback address"),
    ("http://127.0.1/", "127.0.1 is 127.0.0.1, a loopback address"),
    ("http://127.0.0.1./", "127.0.0.1. is 127.0.0.1, a loopback address"),
    ("http://127.255.255.254/", "127.255.255.254 is a loopback address"),
    ("http://[::1]/", "[::1] is a loopback address"),
    ("http://[0:0:0:0:0:0:0:1]:8080/", "[0:0:0:0:0:0:0:1] is a loopback address"),
    ("http://[::ffff:127.0.0.1]/", "[::ffff:127.0.0.1] is an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:7f00:1]/", "[::ffff:7f00:1] is an IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("http://[::127.0.0.1]/", "[::127.0.0.1] is an address embedding 127.0.0.1, a loopback address"),  # compatible
    ("http://[64:ff9b::127.0.0.1]/", "[64:ff9b::127.0.0.1] is an address embedding 127.0.0.1, a loopback address"),
    ("http://[2002:7f00:1::1]/", "[2002:7f00:1::1] is an address embedding 127.0.0.1, a loopback address"),  # 6to4
    # the cloud metadata service and link-local
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://0xa9fea9fe/", "0xa9fea9fe is 169.254.169.254, a link-local address"),
    ("http://[fe80::1]/", "[fe80::1] is a link-local address"),
    (
        "http://[::ffff:169.254.169.254]/",
        "[::ffff:169.254.169.254] is an IPv4-mapped form of 169.254.169.254, a link-local address",
    ),
    # private (RFC 1918), shared (CGNAT), unique local
    ("http://10.0.0.1/", "10.0.0.1 is a private address"),
    ("http://012.1/", "012.1 is 10.0.0.1, a private address"),
    ("http://172.16.5.4/", "172.16.5.4 is a private address"),
    ("http://172.31.255.255/", "172.31.255.255 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://3232235777/", "3232235777 is 192.168.1.1, a private address"),
    ("http://100.64.0.1/", "100.64.0.1 is a shared address (carrier-grade NAT)"),
    ("http://100.127.255.254/", "100.127.255.254 is a shared address (carrier-grade NAT)"),
    ("http://[fc00::1]/", "[fc00::1] is a unique local address"),
    ("http://[fd12:3456:789a::1]/", "[fd12:3456:789a::1] is a unique local address"),
    ("http://[64:ff9b::10.1.2.3]/", "[64:ff9b::10.1.2.3] is an address embedding 10.1.2.3, a private address"),
    ("http://[2002:c0a8:101::1]/", "[2002:c0a8:101::1] is an address embedding 192.168.1.1, a private address"),
    ("http://[::ffff:10.0.0.1]/", "[::ffff:10.0.0.1] is an IPv4-mapped form of 10.0.0.1, a private address"),
    # multicast, unspecified, broadcast, reserved, documentation, other special ranges
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://239.255.255.250/", "239.255.255.250 is a multicast address"),
    ("http://[ff02::1]/", "[ff02::1] is a multicast address"),
    ("http://0.0.0.0/", "0.0.0.0 is an unspecified address"),
    ("http://0/", "0 is 0.0.0.0, an unspecified address"),
    ("http://[::]/", "[::] is an unspecified address"),
    ("http://255.255.255.255/", "255.255.255.255 is the broadcast address"),
    ("http://4294967295/", "4294967295 is 255.255.255.255, the broadcast address"),
    ("http://240.0.0.1/", "240.0.0.1 is a reserved address"),
    ("http://192.0.2.10/", "192.0.2.10 is a documentation address"),
    ("http://198.51.100.7/", "198.51.100.7 is a documentation address"),
    ("http://203.0.113.9/", "203.0.113.9 is a documentation address"),
    ("http://[2001:db8::1]/", "[2001:db8::1] is a documentation address"),
    ("http://198.18.0.1/", "198.18.0.1 is not a public address"),  # benchmarking
    ("http://0.1.2.3/", "0.1.2.3 is not a public address"),  # "this network"
    ("http://[2001::1]/", "[2001::1] is not a public address"),  # Teredo
    ("http://[fec0::1]/", "[fec0::1] is a site-local address"),
    ("http://[64:ff9b:1::1]/", "[64:ff9b:1::1] is a reserved address"),  # local-use NAT64
]


@pytest.mark.parametrize(("url", "detail"), LITERALS)
async def test_a_forbidden_address_is_refused_in_every_spelling(url: str, detail: str) -> None:
    assert await refusal(STRICT, url) == detail


@pytest.mark.parametrize(
    ("url", "connect_url", "host_header"),
    [
        ("http://93.184.216.34/hook", "http://93.184.216.34:80/hook", "93.184.216.34"),
        ("https://93.184.216.34:8443/h?a=1", "https://93.184.216.34:8443/h?a=1", "93.184.216.34:8443"),
        ("http://1572395042/", "http://93.184.216.34:80/", "1572395042"),  # decided on the address, not the spelling
        ("https://[2606:4700:4700::1111]/h", "https://[2606:4700:4700::1111]:443/h", "[2606:4700:4700::1111]"),
        ("http://[2001:4860:4860::8888]:8080/", "http://[2001:4860:4860::8888]:8080/", "[2001:4860:4860::8888]:8080"),
        ("http://[::ffff:93.184.216.34]/", "http://93.184.216.34:80/", "[::ffff:93.184.216.34]"),  # the IPv4 host
        ("http://[64:ff9b::93.184.216.34]/", "http://[64:ff9b::5db8:d822]:80/", "[64:ff9b::93.184.216.34]"),  # NAT64
        ("http://[2002:5db8:d822::1]/", "http://[2002:5db8:d822::1]:80/", "[2002:5db8:d822::1]"),  # 6to4 of a public
        ("HTTPS://93.184.216.34/#fragment", "https://93.184.216.34:443/", "93.184.216.34"),
    ],
)
async def test_a_public_address_is_allowed(url: str, connect_url: str, host_header: str) -> None:
    destination = await STRICT.check(url)
    assert destination.connect_url == connect_url
    assert destination.target.host_header == host_header


@pytest.mark.parametrize(
    ("url", "detail"),
    [
        ("http://user:pass@example.org/h", "user name or password"),
        ("https://token@example.org/h", "user name or password"),
        ("http://@example.org/h", "user name or password"),
        ("http://127.0.0.1\\@example.org/", "user name or password"),  # parsers disagree on this one: refused
        ("ftp://example.org/h", "must start with http:// or https://, not ftp"),
        ("file:///etc/passwd", "must start with http:// or https://, not file"),
        ("gopher://127.0.0.1:6379/_INFO", "must start with http:// or https://, not gopher"),
        ("example.org/h", "must start with http:// or https://, not nothing"),
        ("http:///h", "has no host"),
        ("http://:8080/h", "has no host"),
        ("http://example.org:0/", "invalid port"),
        ("http://example.org:65536/", "invalid port"),
        ("http://example.org:http/", "invalid port"),
        ("http://[::1/", "cannot be read as a URL"),
        ("http://[::1]x/", "malformed IPv6 address"),
        ("http://[fe80::1%25eth0]/", "is not a valid IPv6 address"),
        ("http://%31%32%37.0.0.1/", "is not a valid host name"),  # percent-encoded 127: never decoded here
        ("http://exa\\mple.org/", "is not a valid host name"),
        ("http://b\u00fccher.example/", "is not a valid host name"),  # send the punycode form (xn--)
        ("http://256.1.1.1/", "neither a valid IPv4 address nor a host name"),
        ("http://1.2.3.4.5/", "neither a valid IPv4 address nor a host name"),
        ("http://09.1.1.1/", "neither a valid IPv4 address nor a host name"),  # not octal
        ("http://127.0.0.0x100/", "neither a valid IPv4 address nor a host name"),
    ],
)
async def test_urls_that_are_not_plain_http_to_a_host_are_refused(url: str, detail: str) -> None:
    assert detail in await refusal(STRICT, url)


async def test_a_name_is_refused_if_any_of_its_addresses_is_forbidden() -> None:
    policy = DestinationPolicy(
        resolver=fake_resolver(
            {
                "hooks.partner.example": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
                "sneaky.example": ["93.184.216.34", "10.0.0.7"],  # one private address among public ones
                "metadata.example": ["169.254.169.254"],
                "v6.example": ["2606:2800:220:1::1", "fe80::1%eth0"],
                "mapped.example": ["::ffff:127.0.0.1"],
                "empty.example": [],
            }
        )
    )
    allowed = await policy.check("https://hooks.partner.example/fivecogs")
    assert str(allowed.address) == "93.184.216.34"  # the first address, checked with all the others
    assert (allowed.target.host_header, allowed.tls_name) == ("hooks.partner.example", "hooks.partner.example")
    assert allowed.connect_url == "https://93.184.216.34:443/fivecogs"
    assert await refusal(policy, "http://sneaky.example/") == "sneaky.example resolves to 10.0.0.7, a private address"
    assert (
        await refusal(policy, "http://metadata.example/")
        == "metadata.example resolves to 169.254.169.254, a link-local address"
    )
    assert await refusal(policy, "http://v6.example/") == "v6.example resolves to fe80::1, a link-local address"
    assert "an IPv4-mapped form of 127.0.0.1, a loopback address" in await refusal(policy, "http://mapped.example/")
    with pytest.raises(Unresolved, match=r"empty\.example does not resolve"):
        await policy.check("http://empty.example/")
    with pytest.raises(Unresolved, match=r"nowhere\.example does not resolve"):
        await policy.check("http://nowhere.example/")


async def test_a_name_resolving_to_loopback_is_refused_with_the_system_resolver() -> None:
    # The real resolver: /etc/hosts names localhost (127.0.0.1, maybe ::1 too).
    detail = await refusal(DestinationPolicy(), "http://localhost:8085/h")
    assert detail.startswith("localhost resolves to ")
    assert detail.endswith("a loopback address")


async def test_a_resolver_that_does_not_answer_in_time_is_unresolved() -> None:
    async def hangs(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(3600)
        return []

    with pytest.raises(Unresolved, match=r"slow\.example did not resolve within 0\.05s"):
        await DestinationPolicy(resolver=hangs, resolve_seconds=0.05).check("http://slow.example/")


async def test_allow_loopback_admits_loopback_and_nothing_else() -> None:
    policy = DestinationPolicy(
        allow_loopback=True, resolver=fake_resolver({"localhost": ["::1", "127.0.0.1"], "lan.example": ["10.0.0.1"]})
    )
    assert str((await policy.check("http://127.0.0.1:9/")).address) == "127.0.0.1"
    assert str((await policy.check("http://0x7f000001:9/")).address) == "127.0.0.1"
    assert str((await policy.check("http://[::1]:9/")).address) == "::1"
    assert str((await policy.check("http://[::ffff:127.0.0.1]:9/")).address) == "127.0.0.1"
    assert str((await policy.check("http://localhost:9/")).address) == "::1"
    assert await refusal(policy, "http://0.0.0.0:9/") == "0.0.0.0 is an unspecified address"  # reaches this host too
    assert await refusal(policy, "http://169.254.169.254/") == "169.254.169.254 is a link-local address"
    assert await refusal(policy, "http://lan.example/") == "lan.example resolves to 10.0.0.1, a private address"
    assert "embedding 127.0.0.1" in await refusal(policy, "http://[64:ff9b::127.0.0.1]/")


def test_every_address_kind_in_the_table_is_refused_by_the_address_check_alone() -> None:
    # The same ranges, straight through `forbidden`, including the ends of each range.
    forbidden = [
        "127.0.0.0",
        "10.255.255.255",
        "172.16.0.0",
        "192.168.255.255",
        "100.64.0.0",
        "169.254.0.0",
        "224.0.0.0",
        "255.255.255.255",
        "fe80::",
        "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "fc00::",
        "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "ff00::",
        "::",
        "::1",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
        "::ffff:192.168.0.1",
    ]
    public = ["93.184.216.34", "1.1.1.1", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700:4700::1111"]
    assert [a for a in forbidden if destinations.forbidden(ipaddress.ip_address(a)) is None] == []
    assert [a for a in public if destinations.forbidden(ipaddress.ip_address(a)) is not None] == []
