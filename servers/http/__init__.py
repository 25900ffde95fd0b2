"""The sans-IO HTTP/1.1 core shared by every MPM (RFC 9112 / RFC 9110): bytes in, events and bytes out.

Requests: ``parser``, ``chunked``, ``request``, ``limits``; responses: ``framing`` (which
responses carry a body and how it is delimited), ``response`` (status lines, Date, chunks,
error documents, response-field checks); ``persistence`` (keep-alive).
"""
