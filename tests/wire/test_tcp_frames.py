"""TCP framing: the captured identity-server exchange, chunking, and caps."""

from __future__ import annotations

import json
import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial import unittest

from bitdust_node.wire import tcp_frames as tf
from tests.identity import vectors


def _capture() -> list[dict[str, str]]:
    return json.loads((vectors.VECTORS / "dht_probe" / "idserver_tcp_6661.json").read_text())


def _frames_as_the_protocol_says(file_id: int, data: bytes) -> bytes:
    """PROTOCOL-P2P.md 1.3, written out plainly: each 16,384-byte chunk (an empty file: one empty chunk) in a
    frame of 4-byte big-endian length, `1`, `d`, int32 file id and int32 total size (little-endian), chunk."""
    chunks = [data[at : at + 16_384] for at in range(0, len(data), 16_384)] or [b""]
    return b"".join(struct.pack(">I", 10 + len(c)) + b"1d" + struct.pack("<ii", file_id, len(data)) + c
                    for c in chunks)


class CaptureTests(unittest.TestCase):
    def test_hello_and_answer(self) -> None:
        hello = _capture()[0]
        self.assertEqual(tf.encode_frame(tf.HELLO), bytes.fromhex(hello["request_hex"]))
        frames = tf.FrameDecoder().feed(bytes.fromhex(hello["response_hex"]))
        self.assertEqual(frames[0].command, tf.WAZAP)
        self.assertEqual(frames[0].payload, b"id-server:127.0.0.1")

    def test_upload_frame_and_ok(self) -> None:
        upload = _capture()[1]
        raw = bytes.fromhex(upload["request_hex"])
        frames = tf.FrameDecoder().feed(raw)
        self.assertEqual(len(frames), 1)
        chunk = tf.decode_data(frames[0].payload)
        self.assertEqual(chunk.file_id, 1)
        self.assertEqual(chunk.chunk, vectors.identity_bytes("carol"))
        self.assertEqual(tf.encode_data(1, chunk.chunk), [raw])
        self.assertEqual(tf.encode_ok(1), bytes.fromhex(upload["response_hex"]))


class DecoderTests(unittest.TestCase):
    def test_byte_by_byte(self) -> None:
        stream = tf.encode_frame(tf.HELLO, b"127.0.0.1:7771 http://x/y.xml") + tf.encode_ok(9)
        decoder = tf.FrameDecoder()
        frames = []
        for i in range(len(stream)):
            frames += decoder.feed(stream[i : i + 1])
        self.assertEqual([f.command for f in frames], [tf.HELLO, tf.OK])

    def test_oversized_length_refused_before_buffering(self) -> None:
        decoder = tf.FrameDecoder(max_frame=100)
        self.assertRaises(tf.FrameError, decoder.feed, struct.pack(">I", 101))
        self.assertRaises(tf.FrameError, tf.FrameDecoder().feed, struct.pack(">I", 2**31))

    def test_bad_version_and_command(self) -> None:
        self.assertRaises(tf.FrameError, tf.FrameDecoder().feed, b"\0\0\0\x022h")
        self.assertRaises(tf.FrameError, tf.FrameDecoder().feed, b"\0\0\0\x021z")
        self.assertRaises(tf.FrameError, tf.FrameDecoder().feed, b"\0\0\0\x011")

    @settings(max_examples=200, deadline=None)
    @given(st.binary(min_size=0, max_size=40_000), st.lists(st.integers(1, 50_000), max_size=8))
    def test_data_frames_cut_anywhere_come_out_whole(self, data: bytes, cuts: list[int]) -> None:
        stream = tf.encode_frame(tf.OK, b"\0\0\0\1") + tf.encode_file(3, data) + tf.encode_ok(3)
        decoder, frames, at = tf.FrameDecoder(), [], 0
        for cut in [*sorted({c % (len(stream) + 1) for c in cuts}), len(stream)]:
            frames += decoder.feed(stream[at:cut])
            at = max(at, cut)
        self.assertEqual([f.command for f in frames], [tf.OK] + [tf.DATA] * len(tf.encode_data(3, data)) + [tf.OK])
        self.assertEqual(b"".join(tf.decode_data(f.payload).chunk for f in frames[1:-1]), data)

    def test_one_write_holds_the_same_frames(self) -> None:
        for size in (0, 1, tf.MAX_CHUNK, tf.MAX_CHUNK + 1, 5 * tf.MAX_CHUNK):
            data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
            self.assertEqual(tf.encode_file(9, data), b"".join(tf.encode_data(9, data)))

    def test_a_file_encoded_in_steps_is_the_file_encoded_whole(self) -> None:
        data = bytes(range(256)) * 300
        step = 2 * tf.MAX_CHUNK
        steps = [tf.encode_file(5, data, at, min(at + step, len(data))) for at in range(0, len(data), step)]
        self.assertEqual(b"".join(steps), tf.encode_file(5, data))
        self.assertEqual(tf.encode_file(5, b"", 0, 0), tf.encode_file(5, b""))
        self.assertRaises(ValueError, tf.encode_file, 5, data, 100, 200)

    @settings(max_examples=80, deadline=None)
    @given(st.lists(st.binary(max_size=40_000), max_size=5), st.integers(min_value=1, max_value=3))
    def test_a_file_in_pieces_is_framed_as_the_pieces_joined(self, pieces: list[bytes], chunks_a_step: int) -> None:
        whole = b"".join(pieces)
        step = chunks_a_step * tf.MAX_CHUNK
        steps = [tf.encode_file(6, tuple(pieces), at, min(at + step, len(whole))) for at in range(0, len(whole), step)]
        self.assertEqual(b"".join(steps) if whole else tf.encode_file(6, tuple(pieces)), tf.encode_file(6, whole))
        self.assertEqual(tf.encode_file(6, whole), _frames_as_the_protocol_says(6, whole))
        self.assertEqual(tf.file_size(tuple(pieces)), len(whole))

    def test_only_the_unfinished_frame_is_held(self) -> None:
        stream = tf.encode_file(4, b"y" * 100_000)
        decoder = tf.FrameDecoder()
        frames = decoder.feed(stream[:50_000])
        self.assertEqual(len(frames), 3)
        self.assertEqual(len(decoder._buffer), 50_000 - 3 * (tf.MAX_CHUNK + 14))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=200))
    def test_fuzz(self, data: bytes) -> None:
        try:
            tf.FrameDecoder().feed(data)
        except tf.FrameError:
            pass


class AssemblerTests(unittest.TestCase):
    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 3), st.integers(-2, 70_000), st.integers(0, 17_000)), max_size=30))
    def test_add_frame_is_decode_data_then_add(self, chunks: list[tuple[int, int, int]]) -> None:
        one, two = tf.FileAssembler(max_file_size=60_000, max_files=3), tf.FileAssembler(60_000, 3)
        for file_id, total, length in chunks:
            payload = struct.pack("<ii", file_id, total) + b"q" * length
            try:
                expected: object = (file_id, one.add(tf.decode_data(payload)))
            except tf.FrameError as err:
                expected = str(err)
            try:
                file_id, chunks = two.add_frame(payload)
                found: object = (file_id, None if chunks is None else b"".join(chunks))
            except tf.FrameError as err:
                found = str(err)
            self.assertEqual(found, expected)
            if isinstance(expected, str):
                return  # the connection closes at the first error

    def _chunks(self, file_id: int, data: bytes) -> list[tf.DataChunk]:
        frames = tf.FrameDecoder().feed(b"".join(tf.encode_data(file_id, data)))
        return [tf.decode_data(f.payload) for f in frames]

    def test_multi_chunk_file(self) -> None:
        data = bytes(range(256)) * 200
        chunks = self._chunks(5, data)
        self.assertEqual(len(chunks), 4)
        assembler = tf.FileAssembler(max_file_size=60_000)
        results = [assembler.add(c) for c in chunks]
        self.assertEqual(results[:-1], [None] * 3)
        self.assertEqual(results[-1], data)
        self.assertEqual(assembler.in_flight(), 0)

    def _read(self, decoder: tf.FrameDecoder, assembler: tf.FileAssembler, read: bytes) -> list[bytes]:
        """Feed one read as a connection does; the files it completes."""
        done = []
        for frame in decoder.feed(read):
            _file_id, chunks = assembler.add_frame(frame.payload)
            if chunks is not None:
                done.append(b"".join(chunks))
        return done

    def test_a_file_keeps_views_of_its_reads_until_joined(self) -> None:
        data = bytes(range(256)) * 4000  # 63 chunks
        stream = b"".join(tf.encode_data(3, data))
        reads = [stream[at : at + 300_000] for at in range(0, len(stream), 300_000)]
        decoder, assembler = tf.FrameDecoder(), tf.FileAssembler(max_file_size=1 << 22)
        done = []
        for number, read in enumerate(reads):
            done += self._read(decoder, assembler, read)
            if number < len(reads) - 1:
                # the reads so far held, not copies of their chunks (a frame cut between two reads is the decoder's
                # own copy of that frame, held instead)
                so_far = sum(len(r) for r in reads[: number + 1])
                self.assertLessEqual(abs(assembler.pinned() - so_far), (number + 1) * tf.MAX_FRAME)
        self.assertEqual(done, [data])
        self.assertEqual((assembler.pinned(), assembler.in_flight()), (0, 0))

    def test_a_trickle_of_chunks_cannot_make_the_reads_held_grow_past_the_bound(self) -> None:
        # 30 files of 40 KiB in flight, each sent one chunk a megabyte read (the rest of a read: a whole file
        # of its own, which the assembler hands on at once)
        decoder = tf.FrameDecoder()
        assembler = tf.FileAssembler(max_file_size=1 << 22, max_files=64, max_total=1 << 26)
        filler = bytes(1_000_000)
        slow = {n: bytes([n]) * 40_000 for n in range(30)}
        frames = {n: tf.encode_data(100 + n, data) for n, data in slow.items()}
        done: list[bytes] = []
        for turn in range(3):
            for n in slow:
                read = frames[n][turn] + b"".join(tf.encode_data(1000 + turn * 100 + n, filler))
                done += self._read(decoder, assembler, read)
                self.assertLessEqual(assembler.held(), assembler.allowed())
        self.assertEqual(sorted(d for d in done if d != filler), sorted(slow.values()))
        self.assertEqual((assembler.pinned(), assembler.in_flight()), (0, 0))

    def test_an_aborted_file_lets_go_of_its_reads(self) -> None:
        decoder, assembler = tf.FrameDecoder(), tf.FileAssembler(max_file_size=1 << 22)
        self._read(decoder, assembler, tf.encode_data(8, bytes(50_000))[0])
        self.assertGreater(assembler.pinned(), 0)
        self.assertTrue(assembler.drop(8))
        self.assertEqual(assembler.pinned(), 0)

    def test_a_chunk_of_a_buffer_that_may_change_is_copied(self) -> None:
        assembler = tf.FileAssembler(max_file_size=1 << 20)
        read = bytearray(b"".join(tf.encode_data(4, b"a" * 20_000))[4:])  # one frame, its length prefix off
        first = memoryview(read)[2 : 2 + 8 + tf.MAX_CHUNK]
        self.assertEqual(assembler.add_frame(first), (4, None))
        self.assertEqual(assembler.pinned(), 0)
        read[10:20] = b"z" * 10  # the read changes after the chunk was taken
        rest = struct.pack("<ii", 4, 20_000) + b"a" * (20_000 - tf.MAX_CHUNK)
        file_id, chunks = assembler.add_frame(rest)
        self.assertEqual((file_id, b"".join(chunks or ())), (4, b"a" * 20_000))

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=40),
           st.lists(st.integers(1, 200_000), max_size=30))
    def test_what_is_held_never_passes_what_was_allowed(
        self, sends: list[tuple[int, int, int]], cuts: list[int],
    ) -> None:
        """Files of several sizes, their chunks interleaved with keep-alives padded to the largest frame (reads a
        peer fills with other frames to make views hold them), cut into reads anywhere: every file comes out
        whole, and after every read the bytes held stay within the files' allowances."""
        files = {n: bytes([n]) * (n * 23_000 + 1) for n in range(5)}
        frames = {n: tf.encode_data(100 + n, data) for n, data in files.items()}
        padding = tf.encode_frame(tf.WAZAP, b"w" * (tf.MAX_FRAME - 2))
        stream, sent = [], {n: 0 for n in files}
        for n, pads, count in sends:
            for _ in range(count + 1):
                if sent[n] < len(frames[n]):
                    stream.append(frames[n][sent[n]])
                    sent[n] += 1
            stream += [padding] * pads
        for n in files:
            stream += frames[n][sent[n]:]
        data = b"".join(stream)
        decoder, assembler, done, at = tf.FrameDecoder(), tf.FileAssembler(max_file_size=1 << 22, max_files=8), [], 0
        for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
            for frame in decoder.feed(data[at:cut]):
                if frame.command == tf.DATA:
                    _file_id, chunks = assembler.add_frame(frame.payload)
                    if chunks is not None:
                        done.append(b"".join(chunks))
            at = max(at, cut)
            self.assertLessEqual(assembler.held(), assembler.allowed())
        self.assertEqual(sorted(done), sorted(files.values()))
        self.assertEqual((assembler.held(), assembler.allowed(), assembler.in_flight()), (0, 0, 0))

    def test_a_refused_file_is_followed_to_its_end_and_never_handed_on(self) -> None:
        asked: list[tuple[int, int]] = []

        def admit(file_id: int, size: int) -> int | None:
            asked.append((file_id, size))
            return None if file_id == 1 else tf.file_allowance(size)

        assembler = tf.FileAssembler(max_file_size=1 << 20, max_files=2, admit=admit)
        refused, taken = bytes(50_000), b"t" * 40_000
        results = [assembler.add_frame(f.payload) for f in tf.FrameDecoder().feed(
            tf.encode_file(1, refused) + tf.encode_file(2, taken) + tf.encode_file(3, b"one chunk"))]
        self.assertEqual([r[0] for r in results if r[1] is not None], [2, 3])
        self.assertEqual(b"".join(results[-2][1] or ()), taken)
        self.assertEqual(asked, [(1, 50_000), (2, 40_000)])  # a file in one chunk asks nothing
        self.assertEqual((assembler.in_flight(), assembler.held()), (0, 0))
        # a refused file's chunks are still checked
        assembler.add_frame(tf.FrameDecoder().feed(tf.encode_file(1, refused))[0].payload)
        self.assertRaises(tf.FrameError, assembler.add_frame, struct.pack("<ii", 1, 50_001) + b"x")

    def test_a_file_whose_room_is_taken_back_lets_go_and_is_followed_to_its_end(self) -> None:
        assembler = tf.FileAssembler(max_file_size=1 << 20)
        frames = tf.FrameDecoder().feed(tf.encode_file(7, bytes(100_000)))
        for frame in frames[:3]:
            self.assertEqual(assembler.add_frame(frame.payload), (7, None))
        self.assertGreater(assembler.held(), 0)
        self.assertTrue(assembler.refuse(7))
        self.assertFalse(assembler.refuse(7))
        self.assertEqual((assembler.held(), assembler.allowed(), assembler.in_flight()), (0, 0, 1))
        for frame in frames[3:]:
            self.assertEqual(assembler.add_frame(frame.payload), (7, None))
        self.assertEqual(assembler.in_flight(), 0)

    def test_caps(self) -> None:
        assembler = tf.FileAssembler(max_file_size=1000, max_files=2)
        self.assertRaises(tf.FrameError, assembler.add, tf.DataChunk(1, 1001, b"x"))
        assembler.add(tf.DataChunk(1, 10, b"x"))
        assembler.add(tf.DataChunk(2, 10, b"x"))
        self.assertRaises(tf.FrameError, assembler.add, tf.DataChunk(3, 10, b"x"))
        self.assertRaises(tf.FrameError, assembler.add, tf.DataChunk(1, 11, b"x"))
        self.assertRaises(tf.FrameError, assembler.add, tf.DataChunk(2, 10, b"x" * 10))

    def test_oversized_chunk(self) -> None:
        payload = struct.pack("<II", 1, 20000) + b"x" * (tf.MAX_CHUNK + 1)
        self.assertRaises(tf.FrameError, tf.decode_data, payload)
        self.assertRaises(tf.FrameError, tf.decode_data, b"123")


def _one_frame(assembler: tf.FileAssembler, frame: tf.Frame, out: list[object]) -> None:
    """A frame as the receiving path takes it: a `d` chunk added (its file handed on, joined, once whole), any
    other frame noted by its command."""
    if frame.command != tf.DATA:
        out.append(frame.command)
        return
    file_id, whole = assembler.add_frame(frame.payload)
    if whole is not None:
        out.append((file_id, b"".join(whole)))


def _frame_by_frame(reads: list[bytes], admit: tf.Admit) -> list[object]:
    """What the decoder and the assembler make of the reads one frame at a time: each file handed on (joined), or
    the error that ended the stream."""
    decoder, assembler, out = tf.FrameDecoder(), tf.FileAssembler(max_file_size=1 << 20, admit=admit), []
    try:
        for read in reads:
            for frame in decoder.feed(read):
                _one_frame(assembler, frame, out)
    except tf.FrameError as err:
        out.append(str(err))
    return out


def _with_runs(reads: list[bytes], admit: tf.Admit) -> list[object]:
    """The same through feed_runs, a run taken whole where takes_run allows and frame by frame where not, as
    TcpConnection does."""
    decoder, assembler, out = tf.FrameDecoder(), tf.FileAssembler(max_file_size=1 << 20, admit=admit), []
    try:
        for read in reads:
            frames = decoder.feed_runs(read)
            at = 0
            while at < len(frames):
                frame = frames[at]
                if not isinstance(frame, tf.DataRun):
                    _one_frame(assembler, frame, out)
                elif not assembler.takes_run(frame):
                    frames[at : at + 1] = frame.first_apart()
                    continue
                else:
                    whole = assembler.add_run(frame)
                    if whole is not None:
                        out.append((frame.file_id, b"".join(whole)))
                at += 1
    except tf.FrameError as err:
        out.append(str(err))
    return out


# a stream: files (an id, a size and the chunks actually sent, which may be more or fewer than the size wants),
# other frames between them, all cut into reads anywhere
_chunk_counts = st.integers(0, 6)
_files = st.tuples(st.integers(1, 4), st.integers(0, 5 * 16_384), _chunk_counts)


class RunTests(unittest.TestCase):
    @settings(max_examples=300, deadline=None)
    @given(st.lists(_files, max_size=6), st.lists(st.integers(1, 120_000), max_size=8), st.sets(st.integers(1, 4)),
           st.booleans(), st.integers(-1, 6))
    def test_runs_make_of_any_stream_what_frames_one_by_one_make(
        self, files: list[tuple[int, int, int]], cuts: list[int], refused: set[int], interleave: bool,
        negative_at: int,
    ) -> None:
        frames: list[bytes] = []
        for at, (file_id, size, count) in enumerate(files):
            if at == negative_at:  # whole chunks announcing a negative size: refused in their turn, not before
                frames += [struct.pack(">I", 10 + 16_384) + b"1d" + struct.pack("<ii", 5, -1) + bytes(16_384)] * 2
            data = bytes([file_id]) * size
            whole = [tf.encode_file(file_id, data, at, min(size, at + 16_384)) for at in range(0, size, 16_384)]
            whole = whole or [tf.encode_file(file_id, b"")]
            # fewer chunks than the size wants (cut short), or more (the last ones sent again)
            sent = (whole * 2)[: max(count, 1)] if count > len(whole) else whole[: max(count, 1)]
            frames += sent
            if interleave:
                frames.append(tf.encode_frame(tf.WAZAP, b"keep-alive"))
        stream = b"".join(frames)
        reads, at = [], 0
        for cut in sorted(set(cuts)):
            if at < cut < len(stream):
                reads.append(stream[at:cut])
                at = cut
        reads.append(stream[at:])

        def admit(file_id: int, size: int) -> int | None:
            return None if file_id in refused else tf.file_allowance(size)

        self.assertEqual(_with_runs(reads, admit), _frame_by_frame(reads, admit))

    def test_a_megabyte_in_one_read_is_one_run_after_its_first_chunk(self) -> None:
        data = bytes(range(256)) * 4096
        frames = tf.FrameDecoder().feed_runs(tf.encode_file(9, data))
        self.assertEqual([type(f).__name__ for f in frames], ["DataRun"])
        run = frames[0]
        assert isinstance(run, tf.DataRun)
        self.assertEqual((run.file_id, run.total_size, len(run.payloads)), (9, len(data), 64))
        assembler = tf.FileAssembler(max_file_size=1 << 21)
        self.assertFalse(assembler.takes_run(run))  # its first chunk starts the file: frame by frame
        first, rest = run.first_apart()
        assert isinstance(first, tf.Frame) and isinstance(rest, tf.DataRun)
        self.assertIsNone(assembler.add_frame(first.payload)[1])
        self.assertTrue(assembler.takes_run(rest))
        whole = assembler.add_run(rest)
        assert whole is not None
        self.assertEqual(b"".join(whole), data)
        self.assertEqual(assembler.in_flight(), 0)
