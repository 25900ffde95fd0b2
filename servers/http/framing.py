"""Response message framing, sans-IO (RFC 9110 §6.4.1, §8.6; RFC 9112 §6, §7.1).

What h11's writers decide for an outgoing message, for one response of this server:

* whether the response may carry content at all: not in answer to HEAD (RFC 9110
  §9.3.2), nor with a 1xx (§15.2), 204 (§15.3.5) or 304 (§15.4.5) status (§6.4.1);
* whether the application's Content-Length field goes out (never on 1xx and 204,
  RFC 9110 §8.6) and whether one is added for a body whose total is known;
* which framing the body gets (RFC 9112 §6.3): the Content-Length, chunked transfer
  coding for an HTTP/1.1 client when the length is unknown (RFC 9112 §7.1), or the
  close of the connection for an HTTP/1.0 client;
* how each piece of body is framed: never more than the declared length (the excess
  would be read as the next response: the connection is then not reused), one chunk
  per piece when chunked;
* the end: the last-chunk when chunked, and a connection that is not reused when the
  body fell short of its declared length (the client would wait for the rest, or read
  the next response as it).

:class:`ResponseFraming` holds that state for one response; it does no I/O: bytes in,
bytes out. ``servers.wsgi.WSGIResponse`` extends it (one object per response, no
allocation for the framing), and so does any other writer that needs it.
"""

from __future__ import annotations

from .response import LAST_CHUNK, chunk

#: RFC 9112 §7.1: the field that announces chunked transfer coding
TRANSFER_ENCODING_CHUNKED = b"Transfer-Encoding: chunked\r\n"


def body_forbidden(status: int, method: str) -> bool:
    """RFC 9110 §6.4.1: a response to HEAD (§9.3.2) and a 1xx (§15.2), 204 (§15.3.5)
    or 304 (§15.4.5) response carry no content."""
    return method == "HEAD" or status < 200 or status == 204 or status == 304


def _without_content_length(fields: list[bytes]) -> list[bytes]:
    """The field lines less any Content-Length (RFC 9110 §8.6: none in a 1xx or 204)."""
    return [line for line in fields if not line.lower().startswith(b"content-length:")]


class ResponseFraming:
    """The framing of one response (RFC 9112 §6): decided once with the head
    (:meth:`frame_head`), applied to each piece of body (:meth:`frame`) and to its end
    (:meth:`end`).

    ``length`` is the Content-Length the application declared (None: none) until the
    head is framed, then the length the body is framed with (None: chunked or
    close-delimited). ``keep_alive`` is whether the connection may carry another
    request as far as framing goes: set with the head, cleared when the body breaks the
    framing; the caller clears it too when its persistence policy says so. ``sent_body``
    counts the content octets framed.
    """

    __slots__ = ("length", "chunked", "no_body", "close_delimited", "sent_body", "keep_alive")

    def __init__(self, length: int | None = None) -> None:
        # (WSGIResponse sets these itself: one call less per request)
        self.length = length
        self.chunked = False
        self.no_body = False
        self.close_delimited = False
        self.sent_body = 0
        self.keep_alive = False

    def frame_head(self, method: str, version: tuple[int, int], status: int, total: int | None,
                   fields: list[bytes], parts: list[bytes], first: bytes = b"") -> bytes:
        """Decide the framing of a ``status`` response to a ``method`` request of HTTP
        ``version`` whose body totals ``total`` octets (None: not known yet), append the
        application's field lines ``fields`` and the framing fields to ``parts``, and
        return the bytes that carry ``first``, the first piece of body (:meth:`frame`).
        ``keep_alive`` is True afterwards unless that piece broke the framing; the caller
        clears it when its persistence policy says so (RFC 9112 §9.3). With ``total``
        known, ``first`` is the whole body: the message is then complete, :meth:`end`
        has nothing to add.

        * no content for HEAD, 1xx, 204, 304 (RFC 9110 §6.4.1, §9.3.2, §15.2, §15.3.5,
          §15.4.5): ``no_body``;
        * a 1xx or 204 loses its Content-Length field (RFC 9110 §8.6);
        * a known total becomes Content-Length when the application declared none
          (RFC 9110 §8.6), except on a 304 (it would state the length of the selected
          representation, which we do not know) and as "0" on a HEAD whose application
          sent no body (the GET's length is not known either);
        * an unknown length is chunked for HTTP/1.1 (RFC 9112 §7.1, §6.1) and
          close-delimited for HTTP/1.0 (RFC 9112 §6.3 rule 8): ``close_delimited``,
          which the persistence decision needs.
        """
        no_body = body_forbidden(status, method)
        length = declared = self.length
        if status == 204 or status < 200:
            parts += _without_content_length(fields)
            length = 0
        else:
            parts += fields
            if declared is None and total is not None and status != 304 and not (no_body and total == 0):
                length = total
                parts.append(b"Content-Length: %d\r\n" % total)
        chunked = False
        close_delimited = False
        if length is None and not no_body:
            if version >= (1, 1):
                chunked = True
                parts.append(TRANSFER_ENCODING_CHUNKED)
            else:
                close_delimited = True
        self.length = length
        self.no_body = no_body
        self.chunked = chunked
        self.close_delimited = close_delimited
        self.keep_alive = True
        if not first or no_body:
            body = b""
        elif chunked or (length is not None and len(first) > length - self.sent_body):
            body = self.frame(first)
        else:
            self.sent_body += len(first)  # the whole body at once, or its start: as it is
            body = first
        if declared is not None and total is not None and not no_body and self.sent_body < length:
            # the whole body was ``first`` (never chunked: its length is known) and it fell
            # short of the declared length: end() would say so, this saves the call
            self.keep_alive = False
        return body

    def frame(self, data: bytes) -> bytes:
        """The bytes that carry the body piece ``data`` (not empty): nothing when the
        response has no content (RFC 9110 §6.4.1); never past the framed length (RFC
        9112 §6.3: the excess would be read as the next response, so the connection is
        then not reused); one chunk when chunked (RFC 9112 §7.1)."""
        if self.no_body:
            return b""
        length = self.length
        if length is not None:
            room = length - self.sent_body
            if len(data) > room:
                data = data[:room]
                self.keep_alive = False
        self.sent_body += len(data)
        return chunk(data) if self.chunked else data

    def end(self) -> bytes:
        """The bytes that end the body: the last-chunk with an empty trailer section when
        chunked (RFC 9112 §7.1), else nothing. A body shorter than its Content-Length
        leaves the client waiting for the rest (RFC 9112 §6.3, §8): the connection is
        then not reused."""
        length = self.length
        if length is not None and not self.no_body and self.sent_body < length:
            self.keep_alive = False
        return LAST_CHUNK if self.chunked else b""


__all__ = ["TRANSFER_ENCODING_CHUNKED", "ResponseFraming", "body_forbidden"]
