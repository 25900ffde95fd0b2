"""Who may see a server-level page: httpd's ``Require`` as mod_authz_core and mod_authz_host read it.

Only the forms a status page needs (sans-IO: addresses in, a verdict out):

* ``Require local``: the client is on a loopback address (127.0.0.0/8, ::1) or connects
  from the very address it connected to, i.e. from this machine (mod_authz_host);
* ``Require ip ADDRESS|NETWORK ...``: the client's address is one of these (a plain
  address, ``a.b.c.d/nn``, ``a.b.c.d/m.m.m.m`` or an IPv6 network); an IPv4-mapped
  IPv6 client (``::ffff:a.b.c.d``) is compared as its IPv4 address, as httpd does;
* ``Require all granted`` and ``Require all denied``.

Several forms may be given, separated by ``;`` (``local; ip 10.0.0.0/8``): any one
that matches grants, as the ``Require`` lines of one section do (RequireAny).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


class RequireError(ValueError):
    """A ``Require`` line this module cannot read (the message says what it expected)."""


@dataclass(frozen=True)
class Require:
    """A parsed access rule: any of its parts grants (httpd's RequireAny)."""

    local: bool = False
    granted: bool = False
    networks: tuple[Network, ...] = ()
    text: str = "local"

    @classmethod
    def parse(cls, text: str) -> "Require":
        """Read ``local``, ``all granted``, ``all denied``, ``ip A B ...`` (``;`` between several)."""
        local = granted = False
        networks: list[Network] = []
        parts = [p.split() for p in str(text).split(";") if p.strip()]
        if not parts:
            raise RequireError("expected local, all granted, all denied or ip ADDRESS ...")
        for words in parts:
            kind = words[0].lower()
            args = words[1:]
            if kind == "local" and not args:
                local = True
            elif kind == "all" and [a.lower() for a in args] == ["granted"]:
                granted = True
            elif kind == "all" and [a.lower() for a in args] == ["denied"]:
                pass  # grants nothing
            elif kind == "ip" and args:
                networks += [_network(a) for a in args]
            else:
                raise RequireError(f"cannot read {' '.join(words)!r}: expected local, all granted, all denied "
                                   "or ip ADDRESS|NETWORK ...")
        return cls(local, granted, tuple(networks), "; ".join(" ".join(w) for w in parts))

    def allows(self, client: str, server: str) -> bool:
        """Whether a client at address ``client`` that connected to ``server`` is granted."""
        if self.granted:
            return True
        addr = _address(client)
        if addr is None:
            return False  # not an IP client (a Unix socket peer): only "all granted" admits it
        if self.local and (any(addr in n for n in _LOOPBACK) or addr == _address(server)):
            return True
        return any(addr.version == n.version and addr in n for n in self.networks)

    def __str__(self) -> str:
        return self.text


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        addr = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _network(text: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise RequireError(f"{text!r} is not an IP address or network") from None
