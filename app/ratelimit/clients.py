"""Which client a request comes from, as the key its reads are counted under.

The key is the peer's address, or, when the peer is a trusted proxy, the
right-most X-Forwarded-For entry that is not itself a trusted proxy: each
proxy appends the address it saw, so entries left of that one were written by
the client and prove nothing. An IPv6 client is keyed by its /64, the block a
single host or home is usually given, so that stepping through its addresses
does not buy a new allowance.
"""

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.types import Scope

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8192)
def parse_address(text: str) -> Address | None:
    """`1.2.3.4`, `1.2.3.4:80`, `2001:db8::1` or `[2001:db8::1]:80`; None if not an address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@lru_cache(maxsize=8192)
def address_key(address: Address) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


class ClientKeys:
    def __init__(self, trusted_proxies: Iterable[Network] = ()) -> None:
        self.trusted_proxies = tuple(trusted_proxies)

    def key(self, scope: Scope) -> str:
        client = scope.get("client")
        if not client:
            return ""  # no peer address (a Unix socket without a proxy in front)
        peer = parse_address(client[0])
        if peer is None:
            return str(client[0])  # a server that names peers otherwise (the test client)
        if self.trusted_proxies and self._trusted(peer):
            peer = self._forwarded_for(scope, peer)
        return address_key(peer)

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted_proxies)

    def _forwarded_for(self, scope: Scope, peer: Address) -> Address:
        # Several X-Forwarded-For lines are one comma-separated list, in order.
        lines = [value for name, value in scope["headers"] if name == b"x-forwarded-for"]
        entries = b",".join(lines).decode("latin-1").split(",")
        nearest = peer
        for entry in reversed(entries):
            if not entry.strip():
                continue
            address = parse_address(entry)
            if address is None:
                # A hop the trusted proxy could not name (e.g. "unknown"): whatever is left
                # of it came from the client, so count the request against that proxy.
                return nearest
            if not self._trusted(address):
                return address
            nearest = address
        return nearest
