"""How a load driver may reach the server it is aimed at: the https certificate check and the attack opt-in.

A matrix server given as a URL (docs/deployment.md) carries ``cafile`` / ``insecure`` for an https
URL and ``allow_attacks`` for a non-loopback one; the runner hands them to every driver as one
:class:`Access`. The certificate rules are those of RFC 9110 §4.3.4 (https): the server's
certificate must chain to a trusted CA (the system's, or ``cafile``) and name the URL's host;
``insecure`` turns the check off on purpose, for a self-signed staging server.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

__all__ = ["Access", "LOOPBACK"]


@dataclass(frozen=True)
class Access:
    """The target's certificate check and whether attack-like load may run against it."""

    cafile: str = ""  # https: the CA bundle the certificate is checked against ("" = the system's)
    insecure: bool = False  # https: check no certificate (a self-signed staging server)
    allow_attacks: bool = False  # the user's opt-in for attack-like load against a non-loopback host

    def ssl_context(self) -> ssl.SSLContext:
        """A client context for an https URL (RFC 9110 §4.3.4): verified against ``cafile`` or the system's
        CAs, hostname checked; with ``insecure`` nothing is checked."""
        if self.insecure:
            return ssl._create_unverified_context()  # asked for by the user: a self-signed staging server
        return ssl.create_default_context(cafile=self.cafile or None)

    def context_for(self, url: str) -> ssl.SSLContext | None:
        """:meth:`ssl_context` for an https URL, None for plain http."""
        return self.ssl_context() if url.lower().startswith("https:") else None


#: a server this machine launched: plain http on loopback, nothing to opt in to
LOOPBACK = Access()
