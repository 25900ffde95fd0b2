"""The sans-IO HTTP/1.1 core shared by every MPM (RFC 9112 / RFC 9110): bytes in, events and bytes out."""
