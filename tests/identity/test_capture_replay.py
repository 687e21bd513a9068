"""Replay every captured client stream of the official identity server, in order, against ours.

Each `GET /<name>.xml` must get the same status and body the official server gave at that moment;
each `POST /` must be stored (official servers answer it with HTTP 500, we answer 200 with an
empty body, and clients confirm by GET either way).
"""

from __future__ import annotations

import json
from pathlib import Path

from twisted.trial.unittest import TestCase

from bitdust_node.wire import tcp_frames
from tests.identity import vectors
from tests.identity.support import exchange, split_response, start_server


def _streams() -> list[dict[str, object]]:
    return list(json.loads((vectors.VECTORS / "http" / "index.json").read_text()))


class CaptureReplayTests(TestCase):
    async def test_all_streams_in_order(self) -> None:
        server = start_server(Path(self.mktemp()))
        self.addCleanup(server.stop)
        http = vectors.VECTORS / "http"
        checked = 0
        for entry in _streams():
            stem = f"stream{int(entry['stream']):03d}_port{entry['server_port']}"  # type: ignore[call-overload]
            request = (http / f"{stem}.c2s.txt").read_bytes()
            answer = (http / f"{stem}.s2c.txt").read_bytes()
            if entry["server_port"] == 6661:
                # the capture leaves the connection open; an abort frame lets ours close too
                abort = tcp_frames.encode_frame(tcp_frames.ABORT)
                self.assertEqual(await exchange(server.tcp_port, request + abort), answer)
                continue
            if b"Connection: close" not in request:
                # curl's keep-alive request: ask for a close so the reply ends with the connection
                request = request.replace(b"\r\n", b"\r\nConnection: close\r\n", 1)
            status, headers, body = split_response(await exchange(server.web_port, request))
            first_line = str(entry["first_line"])
            if first_line.startswith("POST"):
                self.assertEqual((status, body), (200, b""), stem)
            elif first_line.startswith("GET / "):
                self.assertEqual(status, 200, stem)
                self.assertIn(b"<!--CLIENT_HOST=", body)
            else:
                their_status, their_headers, their_body = split_response(answer)
                self.assertEqual((status, body), (their_status, their_body), stem)
                self.assertEqual(headers["content-type"], their_headers["content-type"], stem)
                checked += 1
        self.assertGreater(checked, 20)
