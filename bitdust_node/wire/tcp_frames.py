"""TCP framing shared by the identity receiver (6661) and the p2p transport (7771).

A frame is a 4-byte big-endian length, then version `1`, a command byte and the payload.
A `d` payload carries a piece of a "file": 4-byte file id, 4-byte total size (signed int32,
little-endian, as official nodes pack them with struct 'i'), then at most 16,384 bytes. `o` carries
the file id, `a` the file id, a space and a reason. Pure code: nothing here touches the reactor.
"""

from __future__ import annotations

import struct

import attrs

VERSION = b"1"
HELLO = b"h"
WAZAP = b"w"
DATA = b"d"
OK = b"o"
ABORT = b"a"
COMMANDS = frozenset({HELLO, WAZAP, DATA, OK, ABORT})
MAX_CHUNK = 16_384
_DATA_HEADER = struct.Struct("<ii")
_FILE_ID = struct.Struct("<i")
# the largest legal frame: version + command + data header + one chunk
MAX_FRAME = 2 + _DATA_HEADER.size + MAX_CHUNK
_LENGTH = struct.Struct(">I")


class FrameError(ValueError):
    """The peer broke the framing; the connection must be closed."""


@attrs.frozen
class Frame:
    command: bytes
    payload: bytes


@attrs.frozen
class DataChunk:
    file_id: int
    total_size: int
    chunk: bytes


def encode_frame(command: bytes, payload: bytes = b"") -> bytes:
    if command not in COMMANDS:
        raise FrameError(f"unknown command {command!r}")
    body = VERSION + command + payload
    if len(body) > MAX_FRAME:
        raise FrameError("frame too large")
    return _LENGTH.pack(len(body)) + body


def encode_data(file_id: int, data: bytes) -> list[bytes]:
    """The `d` frames that carry `data` as file `file_id`."""
    chunks = [data[i : i + MAX_CHUNK] for i in range(0, len(data), MAX_CHUNK)] or [b""]
    head = _DATA_HEADER.pack(file_id, len(data))
    return [encode_frame(DATA, head + chunk) for chunk in chunks]


def encode_ok(file_id: int) -> bytes:
    return encode_frame(OK, _FILE_ID.pack(file_id))


def decode_ok(payload: bytes) -> int:
    if len(payload) != _FILE_ID.size:
        raise FrameError("ok frame must hold one file id")
    return int(_FILE_ID.unpack(payload)[0])


def encode_abort(file_id: int, reason: str) -> bytes:
    return encode_frame(ABORT, _FILE_ID.pack(file_id) + b" " + reason.encode("utf-8")[:200])


def decode_abort(payload: bytes) -> tuple[int, str]:
    if len(payload) < _FILE_ID.size:
        raise FrameError("abort frame too short")
    return int(_FILE_ID.unpack_from(payload)[0]), payload[_FILE_ID.size :].strip().decode("utf-8", "replace")


def decode_data(payload: bytes) -> DataChunk:
    if len(payload) < _DATA_HEADER.size:
        raise FrameError("data frame too short")
    file_id, total = _DATA_HEADER.unpack_from(payload)
    if total < 0:
        raise FrameError(f"negative file size {total}")
    chunk = payload[_DATA_HEADER.size :]
    if len(chunk) > MAX_CHUNK:
        raise FrameError("data chunk too large")
    return DataChunk(file_id, total, chunk)


@attrs.define
class FrameDecoder:
    """Cut a byte stream into frames; refuses lengths over `max_frame` before buffering them."""

    max_frame: int = MAX_FRAME
    _buffer: bytearray = attrs.field(factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        # frames are cut from the bytes as they came; only a partial frame at the end is kept (copied)
        if self._buffer:
            data = bytes(self._buffer) + data
            self._buffer.clear()
        frames = []
        at, size = 0, len(data)
        while size - at >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(data, at)
            if length < 2 or length > self.max_frame:
                raise FrameError(f"bad frame length {length}")
            start = at + _LENGTH.size
            if size - start < length:
                break
            if data[start : start + 1] != VERSION:
                raise FrameError(f"unknown frame version {data[start : start + 1]!r}")
            command = data[start + 1 : start + 2]
            if command not in COMMANDS:
                raise FrameError(f"unknown command {command!r}")
            frames.append(Frame(command, data[start + 2 : start + length]))
            at = start + length
        if at < size:
            self._buffer += data[at:]
        return frames


@attrs.define
class FileAssembler:
    """Rebuild files from `d` chunks, with caps on file size and on files in flight."""

    max_file_size: int
    max_files: int = 4
    # bytes announced by all files in flight together; None = max_files x max_file_size
    max_total: int | None = None
    # file id -> (announced size, bytes so far, the chunks): joined once at the end, never regrown
    _parts: dict[int, tuple[int, int, list[bytes]]] = attrs.field(factory=dict)
    _announced: int = 0

    def add(self, chunk: DataChunk) -> bytes | None:
        """The whole file once its last chunk arrived, else None."""
        if chunk.total_size > self.max_file_size:
            raise FrameError(f"file of {chunk.total_size} bytes is over the cap")
        total, received, chunks = self._parts.get(chunk.file_id, (chunk.total_size, 0, []))
        if total != chunk.total_size:
            raise FrameError("file size changed between chunks")
        if chunk.file_id not in self._parts:
            if len(self._parts) >= self.max_files:
                raise FrameError(f"more than {self.max_files} files in flight")
            if self.max_total is not None and self._announced + total > self.max_total:
                raise FrameError(f"files in flight would pass {self.max_total} bytes")
            self._announced += total
        received += len(chunk.chunk)
        if received > total:
            raise FrameError("file is longer than announced")
        chunks.append(chunk.chunk)
        if received == total:
            self._parts.pop(chunk.file_id, None)
            self._announced -= total
            return b"".join(chunks)
        self._parts[chunk.file_id] = (total, received, chunks)
        return None

    def drop(self, file_id: int) -> bool:
        """Forget a file the sender aborted; whether it was in flight."""
        found = self._parts.pop(file_id, None)
        if found is not None:
            self._announced -= found[0]
        return found is not None

    def in_flight(self) -> int:
        return len(self._parts)
