"""Streaming multipart/form-data, pulled part by part from an iterator of body chunks.

Starlette's ``request.form()`` spools file parts to a plaintext temporary file; uploads
here must never touch disk unencrypted, so the body is parsed incrementally with
python-multipart's ``MultipartParser`` and each part's bytes are handed on as they
arrive. Memory is bounded by one body chunk plus the small parts held whole.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header

from privet.kit.errors import InvalidInputError, UnsupportedMediaTypeError


def boundary_of(content_type: str | None) -> bytes:
    """The boundary of a multipart/form-data content type, or 415."""
    if not content_type:
        raise UnsupportedMediaTypeError(
            "an upload is multipart/form-data with a `declarations` JSON part, then a `file` part"
        )
    ctype, params = parse_options_header(content_type)
    if ctype != b"multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"uploads must be multipart/form-data, not {ctype.decode('latin-1')!r}",
            content_type=ctype.decode("latin-1"),
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInputError("the multipart content type has no boundary parameter")
    return boundary


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    _reader: MultipartReader = field(repr=False)
    _done: bool = False

    def chunks(self) -> Iterator[bytes]:
        """The part's bytes as they arrive; consume fully before asking for the next part."""
        while not self._done:
            event = self._reader._next()
            if event[0] == "data":
                yield event[1]
            elif event[0] == "end":
                self._done = True
            else:
                raise InvalidInputError("malformed multipart body")

    def read_all(self, limit: int) -> bytes:
        out = bytearray()
        for chunk in self.chunks():
            out += chunk
            if len(out) > limit:
                raise InvalidInputError(
                    f"multipart part {self.name!r} is larger than {limit} bytes", part=self.name
                )
        return bytes(out)

    def drain(self) -> None:
        for _ in self.chunks():
            pass


class MultipartReader:
    """Parts of a multipart body, in order, pulled from `body` (an iterator of bytes)."""

    def __init__(self, body: Iterator[bytes], boundary: bytes) -> None:
        self._body = body
        self._events: deque[tuple] = deque()  # type: ignore[type-arg]
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._ended = False
        self._current: Part | None = None
        self._parser = MultipartParser(
            boundary,
            callbacks={
                "on_part_begin": self._on_part_begin,
                "on_part_data": self._on_part_data,
                "on_part_end": self._on_part_end,
                "on_header_field": self._on_header_field,
                "on_header_value": self._on_header_value,
                "on_header_end": self._on_header_end,
                "on_headers_finished": self._on_headers_finished,
                "on_end": self._on_end,
            },
        )

    # parser callbacks -----------------------------------------------------------------
    def _on_part_begin(self) -> None:
        self._headers = {}

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        self._headers[self._header_field.decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        self._events.append(("begin", dict(self._headers)))

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append(("data", bytes(data[start:end])))

    def _on_part_end(self) -> None:
        self._events.append(("end",))

    def _on_end(self) -> None:
        self._ended = True

    # pulling ----------------------------------------------------------------------------
    def _next(self) -> tuple:  # type: ignore[type-arg]
        while not self._events:
            chunk = next(self._body, None)
            if chunk is None:
                self._parser.finalize()
                if not self._events:
                    if not self._ended:
                        raise InvalidInputError(
                            "the multipart body ended before its closing boundary "
                            "(upload cut short?)"
                        )
                    return ("eof",)
                break
            try:
                self._parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own error types
                raise InvalidInputError(f"malformed multipart body: {exc}") from None
        return self._events.popleft()

    def next_part(self) -> Part | None:
        """The next part (after finishing the previous one), or None at the end."""
        if self._current is not None and not self._current._done:
            self._current.drain()
        event = self._next()
        if event[0] == "eof":
            return None
        if event[0] != "begin":
            raise InvalidInputError("malformed multipart body")
        headers: dict[str, bytes] = event[1]
        disposition, params = parse_options_header(headers.get("content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise InvalidInputError("each multipart part needs Content-Disposition: form-data")
        filename = params.get(b"filename")
        ctype = headers.get("content-type")
        self._current = Part(
            name=params[b"name"].decode("utf-8", "replace"),
            filename=filename.decode("utf-8", "replace") if filename is not None else None,
            content_type=ctype.decode("latin-1") if ctype else None,
            _reader=self,
        )
        return self._current

    def drain(self) -> None:
        """Read the rest of the body (so the client gets the response cleanly)."""
        for _ in self._body:
            pass
