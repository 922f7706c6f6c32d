"""Who a request comes from, for counting: the client's address, from ``X-Forwarded-For`` only behind a trusted
proxy, turned into a MAC so that no counter ever holds an address.

- The peer of the connection is the client, unless it lies in ``trusted_proxies``: then the client is the
  right-most address of ``X-Forwarded-For`` that is not a trusted proxy itself (the left part of that header
  is whatever the client chose to send, so it is never believed).
- IPv6 addresses count per /64 (one phone's whole prefix); an IPv4-mapped IPv6 address counts as IPv4.
- An address that cannot be read (no peer at all, a malformed header) is counted under one shared key:
  limited like any other client, never waved through.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNREADABLE = "unreadable"


@lru_cache(maxsize=16)
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


@lru_cache(maxsize=8192)  # parsing costs more than the rest of the limit; phones come back
def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in nets)


def client_address(peer: str | None, forwarded_for: Iterable[str], trusted_proxies: tuple[str, ...]) -> str:
    """The client's address as counted (``a.b.c.d``, ``xxxx:...::/64``), or ``UNREADABLE``."""
    address = _parse(peer) if peer else None
    if address is None:
        return UNREADABLE
    trusted = networks(trusted_proxies)
    if trusted and _within(address, trusted):
        hops = [h for header in forwarded_for for h in header.split(",")]
        for hop in reversed(hops):
            parsed = _parse(hop)
            if parsed is None:
                return UNREADABLE
            address = parsed
            if not _within(address, trusted):
                break
    if isinstance(address, ipaddress.IPv6Address):
        return f"{ipaddress.ip_network(f'{address}/64', strict=False).network_address}/64"
    return str(address)


def scope_address(scope: Any, trusted_proxies: tuple[str, ...]) -> str:
    """``client_address`` of an ASGI connection scope."""
    client = scope.get("client")
    forwarded = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"x-forwarded-for"]
    return client_address(client[0] if client else None, forwarded, trusted_proxies)


def exempt(address: str, exempt_networks: tuple[str, ...]) -> bool:
    """Whether a counted address lies in a network the settings exempt (none by default)."""
    if not exempt_networks or address == UNREADABLE:
        return False
    parsed = _parse(address.removesuffix("/64"))
    return parsed is not None and _within(parsed, networks(exempt_networks))


def counter_key(secret: str, kind: str, value: str) -> str:
    """The key a counter is kept under: ``kind`` and a MAC of ``value`` (an address, a user name)."""
    mac = hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{kind}:{mac}"
