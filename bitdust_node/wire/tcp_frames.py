"""TCP framing shared by the identity receiver (6661) and the p2p transport (7771).

A frame is a 4-byte big-endian length, then version `1`, a command byte and the payload.
A `d` payload carries a piece of a "file": 4-byte file id, 4-byte total size (signed int32,
little-endian, as official nodes pack them with struct 'i'), then at most 16,384 bytes. `o` carries
the file id, `a` the file id, a space and a reason. Pure code: nothing here touches the reactor.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import NamedTuple, cast

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
# a `d` frame of a whole chunk on the wire, and the bytes that open it before the chunk
_WHOLE_CHUNK_FRAME = _LENGTH.size + MAX_FRAME
_WHOLE_CHUNK_OPENING = _WHOLE_CHUNK_FRAME - MAX_CHUNK


# a file's bytes, whole or as pieces sent one after another (a packet's JSON around its payload): never joined
FileBytes = bytes | tuple[bytes, ...]
# a received file as the chunks it came in (views of the reads while they are not held too much)
Chunks = tuple[bytes | memoryview, ...]


def file_size(data: FileBytes) -> int:
    return len(data) if isinstance(data, bytes) else sum(len(piece) for piece in data)


def joined(data: FileBytes) -> bytes:
    """The file's bytes in one piece (copied only when it is in pieces)."""
    return data if isinstance(data, bytes) else b"".join(data)


class FrameError(ValueError):
    """The peer broke the framing; the connection must be closed."""


class DataRun(NamedTuple):
    """Whole chunks of one file in consecutive `d` frames of one read: each frame opened with the same 14 bytes
    (length, version, `d`, file id, total size) as the first, which was checked like any frame and announces a
    size that is not negative (such a frame is refused in its turn, frame by frame)."""

    file_id: int
    total_size: int
    # each frame's payload, as a `d` Frame has it: the data header, then the chunk
    payloads: list[memoryview]

    def first_apart(self) -> list[Frame | DataRun]:
        """Its first frame, then the rest of the run (or its last frame): the first chunk of a file is admitted
        frame by frame, the rest of its run then taken at once."""
        first = Frame(DATA, self.payloads[0])
        if len(self.payloads) == 2:
            return [first, Frame(DATA, self.payloads[1])]
        return [first, DataRun(self.file_id, self.total_size, self.payloads[1:])]


class Frame(NamedTuple):
    command: bytes
    # bytes, except in a `d` frame: a view into the received bytes, to be decoded (and so copied) at once
    payload: bytes | memoryview


class DataChunk(NamedTuple):
    file_id: int
    total_size: int
    chunk: bytes


def encode_frame(command: bytes, payload: bytes = b"") -> bytes:
    if command not in COMMANDS:
        raise FrameError(f"unknown command {command!r}")
    if len(payload) + 2 > MAX_FRAME:
        raise FrameError("frame too large")
    return b"".join((_LENGTH.pack(len(payload) + 2), VERSION, command, payload))


def encode_data(file_id: int, data: FileBytes) -> list[bytes]:
    """The `d` frames that carry `data` as file `file_id`, one bytes a frame."""
    size = file_size(data)
    return [encode_file(file_id, data, at, min(size, at + MAX_CHUNK)) for at in range(0, size, MAX_CHUNK)] or [
        encode_file(file_id, data)]


def encode_file(file_id: int, data: FileBytes, start: int = 0, end: int | None = None) -> bytes:
    """The `d` frames of file `file_id` that carry its bytes `start` to `end` (all of them by default), as one
    write.

    A large file is sent a step at a time: each step's bytes are copied once, into a buffer the size of a step.
    `start` must be a multiple of MAX_CHUNK and `end` one too unless it is the end of the file.
    """
    return b"".join(file_frames(file_id, data, start, end))


def file_frames(file_id: int, data: FileBytes, start: int = 0, end: int | None = None) -> list[bytes | memoryview]:
    """encode_file's bytes as the pieces they join from, for a vectored send: each frame's opening, then its chunk
    as a view of `data` (a chunk that spans two pieces of `data` as two views)."""
    size = file_size(data)
    end = size if end is None else end
    if start % MAX_CHUNK or (end != size and end % MAX_CHUNK):
        raise ValueError("a file is cut into steps at chunk boundaries")
    head = VERSION + DATA + _DATA_HEADER.pack(file_id, size)
    full = _LENGTH.pack(len(head) + MAX_CHUNK) + head  # what opens every frame of a whole chunk
    out: list[bytes | memoryview] = []
    straddling: list[memoryview] = []  # a chunk that spans two pieces, gathered
    gathered = 0
    base = 0  # where the piece starts in the file
    for piece in (data,) if isinstance(data, bytes) else data:
        low, high = max(start, base) - base, min(end, base + len(piece)) - base  # its part of the step
        base += len(piece)
        if low >= high:
            continue
        view = memoryview(piece)
        if gathered:
            taken = min(MAX_CHUNK - gathered, high - low)
            straddling.append(view[low : low + taken])
            gathered += taken
            low += taken
            if gathered < MAX_CHUNK:
                continue
            out.append(full)
            out.extend(straddling)
            straddling, gathered = [], 0
        # the chunks that lie within the piece, views interleaved with their frame openings in one go
        whole = (high - low) // MAX_CHUNK
        if whole:
            run: list[bytes | memoryview] = [full] * (2 * whole)
            run[1::2] = [view[at : at + MAX_CHUNK] for at in range(low, low + whole * MAX_CHUNK, MAX_CHUNK)]
            out += run
            low += whole * MAX_CHUNK
        if low < high:
            straddling.append(view[low:high])
            gathered += high - low
    if gathered or not size:
        out.append(_LENGTH.pack(len(head) + gathered) + head)  # the last, short chunk (or an empty file's frame)
        out.extend(straddling)
    return out


def encode_ok(file_id: int) -> bytes:
    return encode_frame(OK, _FILE_ID.pack(file_id))


def decode_ok(payload: bytes | memoryview) -> int:
    if len(payload) != _FILE_ID.size:
        raise FrameError("ok frame must hold one file id")
    return int(_FILE_ID.unpack(payload)[0])


def encode_abort(file_id: int, reason: str) -> bytes:
    return encode_frame(ABORT, _FILE_ID.pack(file_id) + b" " + reason.encode("utf-8")[:200])


def decode_abort(payload: bytes | memoryview) -> tuple[int, str]:
    if len(payload) < _FILE_ID.size:
        raise FrameError("abort frame too short")
    reason = bytes(payload[_FILE_ID.size :]).strip().decode("utf-8", "replace")
    return int(_FILE_ID.unpack_from(payload)[0]), reason


def _data_header(payload: bytes | memoryview) -> tuple[int, int]:
    """A `d` frame's file id and announced size, its chunk checked to fit; FrameError otherwise."""
    if len(payload) < _DATA_HEADER.size:
        raise FrameError("data frame too short")
    file_id, total = _DATA_HEADER.unpack_from(payload)
    if total < 0:
        raise FrameError(f"negative file size {total}")
    if len(payload) - _DATA_HEADER.size > MAX_CHUNK:
        raise FrameError("data chunk too large")
    return file_id, total


def decode_data(payload: bytes | memoryview) -> DataChunk:
    file_id, total = _data_header(payload)
    return DataChunk(file_id, total, bytes(payload[_DATA_HEADER.size :]))


_VERSION_BYTE = VERSION[0]


@attrs.define
class FrameDecoder:
    """Cut a byte stream into frames; refuses lengths over `max_frame` before buffering them."""

    max_frame: int = MAX_FRAME
    # the start of a frame that did not arrive whole (at most one frame: never the whole stream)
    _buffer: bytearray = attrs.field(factory=bytearray)

    def feed(self, data: bytes) -> list[Frame]:
        return cast("list[Frame]", self._decode(data, runs=False))

    def feed_runs(self, data: bytes) -> list[Frame | DataRun]:
        """feed, with consecutive whole chunks of one file as one DataRun (a megabyte is 64 frames: one step, not
        64, for whoever adds them)."""
        return self._decode(data, runs=True)

    def _decode(self, data: bytes, runs: bool) -> list[Frame | DataRun]:
        frames: list[Frame | DataRun] = []
        at = self._finish_held_frame(data, frames) if self._buffer else 0
        if at < 0:
            return frames
        view = memoryview(data)
        size = len(data)
        # the per-frame work inlined: a megabyte is 64 frames, and this loop is most of a receiver's Python time
        unpack_length, max_frame, append = _LENGTH.unpack_from, self.max_frame, frames.append
        while size - at >= 4:
            (length,) = unpack_length(data, at)
            if length < 2 or length > max_frame:
                raise FrameError(f"bad frame length {length}")
            start = at + 4
            end = start + length
            if end > size:
                break
            if data[start] != _VERSION_BYTE:
                raise FrameError(f"unknown frame version {data[start : start + 1]!r}")
            command = data[start + 1 : start + 2]
            if command == DATA:
                # a run only of frames add_frame would take (a negative size, its sign bit set, is refused there in
                # its turn, after the frames before it: not here, while the read is decoded)
                if runs and length == MAX_FRAME and data[start + 9] < 0x80 and end + _WHOLE_CHUNK_FRAME <= size \
                        and data.startswith(data[at : start + 10], end):
                    end = self._run(data, view, at, end, frames)
                else:
                    append(Frame(DATA, view[start + 2 : end]))
            elif command in COMMANDS:
                append(Frame(command, data[start + 2 : end]))
            else:
                raise FrameError(f"unknown command {command!r}")
            at = end
        if at < size:
            self._buffer += view[at:]
        return frames

    @staticmethod
    def _run(data: bytes, view: memoryview, at: int, end: int, frames: list[Frame | DataRun]) -> int:
        """The whole-chunk `d` frame at `at` (checked) and those after it that open with the same bytes, as one
        DataRun; where the run ends."""
        opening = data[at : at + _WHOLE_CHUNK_OPENING]
        file_id, total = _data_header(view[at + _LENGTH.size + 2 : end])
        payloads = [view[end - MAX_FRAME + 2 : end]]
        size, startswith = len(data), data.startswith
        while end + _WHOLE_CHUNK_FRAME <= size and startswith(opening, end):
            end += _WHOLE_CHUNK_FRAME
            payloads.append(view[end - MAX_FRAME + 2 : end])
        frames.append(DataRun(file_id, total, payloads))
        return end

    def _finish_held_frame(self, data: bytes, frames: list[Frame | DataRun]) -> int:
        """Complete the held frame from the head of `data`: where the rest of `data` starts, or -1."""
        held = self._buffer
        taken = 0
        if len(held) < _LENGTH.size:
            taken = min(_LENGTH.size - len(held), len(data))
            held += data[:taken]
            if len(held) < _LENGTH.size:
                return -1
        length = self._length(held, 0)
        more = min(_LENGTH.size + length - len(held), len(data) - taken)
        held += data[taken : taken + more]
        taken += more
        if len(held) < _LENGTH.size + length:
            return -1
        whole = bytes(held)
        held.clear()
        frames.append(self._frame(whole, memoryview(whole), _LENGTH.size, len(whole)))
        return taken

    def _length(self, data: bytes | bytearray, at: int) -> int:
        """The frame length at `at`, refused before anything of the frame is buffered."""
        (length,) = _LENGTH.unpack_from(data, at)
        if length < 2 or length > self.max_frame:
            raise FrameError(f"bad frame length {length}")
        return int(length)

    @staticmethod
    def _frame(data: bytes, view: memoryview, start: int, end: int) -> Frame:
        if data[start] != _VERSION_BYTE:
            raise FrameError(f"unknown frame version {data[start : start + 1]!r}")
        command = data[start + 1 : start + 2]
        if command == DATA:
            return Frame(command, view[start + 2 : end])
        if command not in COMMANDS:
            raise FrameError(f"unknown command {command!r}")
        return Frame(command, data[start + 2 : end])


@attrs.define(eq=False)
class _Incoming:
    """A file being received: its announced size, the bytes so far and their chunks."""

    size: int
    received: int = 0
    chunks: list[bytes | memoryview] = attrs.field(factory=list)
    # the read its last chunk was a view of, and the bytes of the reads it holds views into
    last_read: object = None
    pinned: int = 0
    # bytes of its chunks kept as copies
    copied: int = 0
    # what it may hold (its allowance); 0 for a refused file, whose chunks are counted and let go
    allowance: int = 0
    # views of its reads were copied once already: it keeps copies from then on
    copies_only: bool = False


# a chunk is kept as a view of the read it came in (no copy) while the bytes so held stay within what the files in
# flight were allowed: their size plus up to this much for the parts of the reads that belong to other frames (a
# file's first and last reads hold the end of the file before it and the start of the next)
PIN_SLACK = 2 * 1024 * 1024
# what an admission says: the bytes a file may hold (at least its size), or None to refuse it
Admit = Callable[[int, int], "int | None"]


def file_allowance(size: int) -> int:
    """What a file of `size` bytes may hold at most while it is received: its chunks and, kept as views, the
    parts of its first and last reads that belong to other frames."""
    return size + min(size, PIN_SLACK)


@attrs.define
class FileAssembler:
    """Rebuild files from `d` chunks, with caps on file size and on files in flight.

    A file that does not come in one chunk is admitted first (`admit`, by default always, as much as
    file_allowance says): a refused one is still followed to its end, so that its chunks are checked and
    let go, and is never handed on; `refuse` turns a file in flight into such a one. The bytes held, views
    of reads and copies, never pass what the files in flight were allowed.
    """

    max_file_size: int
    max_files: int = 4
    # bytes announced by all files in flight together; None = max_files x max_file_size
    max_total: int | None = None
    admit: Admit | None = None
    # file id -> _Incoming: its chunks, handed on together once the last is in (never joined here)
    _parts: dict[int, _Incoming] = attrs.field(factory=dict)
    _announced: int = 0
    # what the files in flight were allowed, and what they hold: views of reads (a read counted once a file)
    # and copies of chunks
    _allowed: int = 0
    _pinned: int = 0
    _copied: int = 0

    def add(self, chunk: DataChunk) -> bytes | None:
        """The whole file once its last chunk arrived, else None."""
        chunks = self._add(chunk.file_id, chunk.total_size, chunk.chunk)
        return None if chunks is None else b"".join(chunks)

    def add_frame(self, payload: bytes | memoryview) -> tuple[int, Chunks | None]:
        """decode_data and add in one step (the receiving hot path): the file id, and the whole file's chunks
        once its last one arrived, else None. A chunk is not copied while it is a view of a read that is not held
        too much already; the file is handed on as its chunks, for the taker to copy what it keeps at once (the
        reads they are views of are no longer counted)."""
        file_id, total = _data_header(payload)
        return file_id, self._add(file_id, total, payload[_DATA_HEADER.size :])

    def takes_run(self, run: DataRun) -> bool:
        """Whether add_run may take the run in one step: its file in flight, kept, and not ended before the run's
        last chunk. Anything else (a file's first chunk and its admission, a refused file, a run past the end)
        goes frame by frame: first_apart, then add_frame for that one."""
        incoming = self._parts.get(run.file_id)
        return (incoming is not None and incoming.allowance > 0 and incoming.size == run.total_size
                and incoming.received + len(run.payloads) * MAX_CHUNK <= incoming.size)

    def add_run(self, run: DataRun) -> Chunks | None:
        """add_frame for each frame of a run takes_run allowed, in one step: the whole file's chunks once the run
        ended it, else None."""
        if not self.takes_run(run):
            raise ValueError("a run takes_run did not allow")
        incoming = self._parts[run.file_id]
        incoming.received = received = incoming.received + len(run.payloads) * MAX_CHUNK
        kept, header = self._kept, _DATA_HEADER.size
        incoming.chunks += [kept(incoming, payload[header:]) for payload in run.payloads]
        if received < incoming.size:
            return None
        self._forget(run.file_id, incoming)
        return tuple(incoming.chunks)

    def _add(self, file_id: int, total_size: int, chunk: bytes | memoryview) -> Chunks | None:
        incoming = self._parts.get(file_id)
        if incoming is None:
            if total_size > self.max_file_size:
                raise FrameError(f"file of {total_size} bytes is over the cap")
            if len(self._parts) >= self.max_files:
                raise FrameError(f"more than {self.max_files} files in flight")
            if self.max_total is not None and self._announced + total_size > self.max_total:
                raise FrameError(f"files in flight would pass {self.max_total} bytes")
            if len(chunk) == total_size:
                return (bytes(chunk),)  # a file in one chunk (most packets): one copy, nothing held, no admission
            incoming = self._start(file_id, total_size)
        elif incoming.size != total_size:
            raise FrameError("file size changed between chunks")
        received = incoming.received + len(chunk)
        if received > total_size:
            raise FrameError("file is longer than announced")
        incoming.received = received
        if not incoming.allowance:  # refused: followed to its end, kept nowhere
            if received == total_size:
                del self._parts[file_id]
            return None
        incoming.chunks.append(self._kept(incoming, chunk))
        if received < total_size:
            return None
        self._forget(file_id, incoming)
        return tuple(incoming.chunks)

    def _start(self, file_id: int, total_size: int) -> _Incoming:
        allowance = file_allowance(total_size) if self.admit is None else self.admit(file_id, total_size)
        incoming = self._parts[file_id] = _Incoming(total_size, allowance=max(allowance or 0, 0))
        if incoming.allowance:
            incoming.allowance = max(incoming.allowance, total_size)
            self._announced += total_size
            self._allowed += incoming.allowance
        return incoming

    def _kept(self, incoming: _Incoming, chunk: bytes | memoryview) -> bytes | memoryview:
        """The chunk as a view of its read while what is held stays within what is allowed, else a copy of it."""
        if isinstance(chunk, memoryview) and not incoming.copies_only:
            read = chunk.obj
            if read is incoming.last_read:
                return chunk  # that read is counted already
            if type(read) is bytes and self._pinned + self._copied + len(read) <= self._allowed:
                self._pinned += len(read)
                incoming.pinned += len(read)
                incoming.last_read = read
                return chunk
        kept = bytes(chunk)
        incoming.copied += len(kept)
        self._copied += len(kept)
        if self._pinned + self._copied > self._allowed:
            self._compact()
        return kept

    def _compact(self) -> None:
        """Copy out the views of the files holding most reads until what is held fits what was allowed again: reads
        padded with other frames cannot make a connection hold more than its files' allowance."""
        for incoming in sorted(self._parts.values(), key=lambda i: i.pinned, reverse=True):
            if self._pinned + self._copied <= self._allowed or not incoming.pinned:
                return
            copied = 0
            for at, chunk in enumerate(incoming.chunks):
                if isinstance(chunk, memoryview):
                    incoming.chunks[at] = bytes(chunk)
                    copied += len(chunk)
            self._pinned -= incoming.pinned
            self._copied += copied
            incoming.copied += copied
            incoming.pinned, incoming.last_read, incoming.copies_only = 0, None, True

    def _forget(self, file_id: int, incoming: _Incoming) -> None:
        del self._parts[file_id]
        if incoming.allowance:
            self._announced -= incoming.size
            self._allowed -= incoming.allowance
        self._pinned -= incoming.pinned
        self._copied -= incoming.copied
        if self._pinned + self._copied > self._allowed:
            self._compact()  # it held less than it was allowed, and others more: they hold no more than that now

    def drop(self, file_id: int) -> bool:
        """Forget a file the sender aborted; whether it was in flight."""
        incoming = self._parts.get(file_id)
        if incoming is not None:
            self._forget(file_id, incoming)
        return incoming is not None

    def refuse(self, file_id: int) -> bool:
        """Let go of what a file in flight holds and follow the rest of it without keeping it (its room was
        given to someone else); whether it was in flight."""
        incoming = self._parts.get(file_id)
        if incoming is None or not incoming.allowance:
            return False
        self._forget(file_id, incoming)
        self._parts[file_id] = _Incoming(incoming.size, incoming.received)
        return True

    def pinned(self) -> int:
        """Bytes of reads held by views of files in flight."""
        return self._pinned

    def held(self) -> int:
        """Bytes the files in flight hold: the reads their views keep, and their copies."""
        return self._pinned + self._copied

    def allowed(self) -> int:
        """What the files in flight were allowed to hold together."""
        return self._allowed

    def in_flight(self) -> int:
        return len(self._parts)
