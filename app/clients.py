"""Who is asking: a client's address, the identity the per-client limits count by (sessions, queued requests).

The address is the connection's peer, unless the peer is a proxy we trust (`TrustedProxies`), which tells the
client's address in `X-Forwarded-For`. That header is whatever the client sends unless a proxy we trust sets it, so
it is read only from trusted peers: a stranger connecting directly cannot pose as many clients by inventing it.

IPv6 clients are counted by their /64 network: one host or household is usually given a whole /64 and can use any
address in it.

Gradio-free: `client_address` takes anything with `client.host` and `headers` (`gr.Request`, Starlette's `Request`).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

UNKNOWN = "unknown"  # a request without a peer address (not served over TCP): all such requests are one client
TRUST_NONE = ("", "0", "false", "no", "off", "none")
TRUST_ALL = ("1", "true", "yes", "on", "all", "*")
# "private": the networks a hosting platform's own proxies connect from (a Hugging Face Space's proxy reaches the
# app from a private address), loopback and link-local included
PRIVATE_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
)
TRUSTED_PROXY_USAGE = (
    "SAM2_TRUSTED_PROXY (--trusted-proxy) must be 0 (trust no proxy), 1 (trust X-Forwarded-For from any peer), "
    "private (from private-network peers) or a comma-separated list of proxy addresses and networks (10.0.0.0/8, "
    "192.0.2.7)"
)


@dataclass(frozen=True)
class TrustedProxies:
    """Which peers may tell the client's address in `X-Forwarded-For`, and so which address a request counts as.

    trust_all: every peer is a trusted proxy; the client is the leftmost address of the header (uvicorn's
        `forwarded_allow_ips="*"`). Only for a server no one can reach except through its proxy, and only when that
        proxy replaces the header (a proxy that appends to it lets a client write the leftmost address).
    networks: the trusted proxies' addresses; the client is the rightmost address of the header that is not one of
        them (what the nearest trusted proxy saw), so addresses a client writes into the header are never used.

    Neither (the default): the header is ignored and the client is the peer.
    """

    trust_all: bool = False
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """The value of SAM2_TRUSTED_PROXY: "0" (none), "1" (all), "private" (`PRIVATE_NETWORKS`) or a list like
        "10.0.0.0/8, 192.0.2.7"; ValueError otherwise."""
        value = text.strip().lower()
        if value in TRUST_NONE:
            return cls()
        if value in TRUST_ALL:
            return cls(trust_all=True)
        entries = PRIVATE_NETWORKS if value == "private" else [e.strip() for e in value.split(",") if e.strip()]
        try:
            return cls(networks=tuple(ipaddress.ip_network(entry, strict=False) for entry in entries))
        except ValueError as error:
            raise ValueError(f"{TRUSTED_PROXY_USAGE}; got {text!r}.") from error

    def trusts(self, address: str) -> bool:
        """Whether `address` is one of the trusted proxies."""
        if self.trust_all:
            return True
        ip = _parse_ip(address)
        return ip is not None and any(ip in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's identity (see the module's docstring) for a request from `peer` carrying `forwarded_for`
        (the `X-Forwarded-For` header, None without one)."""
        if not peer:
            return UNKNOWN
        if not forwarded_for or not self.trusts(peer):
            return _identity(peer)
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if not hops:
            return _identity(peer)
        if self.trust_all:
            return _identity(hops[0])
        for hop in reversed(hops):
            if not self.trusts(hop):
                return _identity(hop)
        return _identity(hops[0])  # every hop is a trusted proxy: the first is the nearest thing to a client


def client_address(request: Any, proxies: TrustedProxies) -> str:
    """The identity of the client that sent `request` (`gr.Request`, Starlette's `Request` or anything with
    `client.host` and `headers`); `UNKNOWN` without a peer address."""
    peer = getattr(getattr(request, "client", None), "host", None)
    headers = getattr(request, "headers", None)
    forwarded = headers.get("x-forwarded-for") if headers is not None else None
    return proxies.client(peer if isinstance(peer, str) else None, forwarded if isinstance(forwarded, str) else None)


def _parse_ip(text: str) -> IPAddress | None:
    """An address as written in a header: "192.0.2.7", "2001:db8::1", with a port ("192.0.2.7:5000",
    "[2001:db8::1]:443") or not; None when it is not one."""
    text = text.strip()
    candidates = [text]
    if text.startswith("[") and "]" in text:
        candidates.append(text[1 : text.index("]")])
    elif text.count(":") == 1:
        candidates.append(text.split(":")[0])
    for candidate in candidates:
        try:
            return ipaddress.ip_address(candidate.split("%")[0])
        except ValueError:
            continue
    return None


def _identity(address: str) -> str:
    """The identity limits count by: an IPv4 address, an IPv6 /64 network, or (not an address) the text itself,
    shortened."""
    ip = _parse_ip(address)
    if ip is None:
        return address.strip()[:64] or UNKNOWN
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
