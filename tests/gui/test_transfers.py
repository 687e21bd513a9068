"""Uploads staged from the browser and downloads offered once: order, bounds, owners, idle expiry."""

from __future__ import annotations

from pathlib import Path

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.errors import Conflict, InvalidInput, NotFound, TooLarge
from bitdust_node.gui.transfers import IDLE, MAX_PIECE, BrowserDownloads, BrowserUploads, safe_name


class UploadTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.uploads = BrowserUploads(Path(self.mktemp()), self.clock, max_staged=2)

    def test_pieces_in_order_make_the_file(self) -> None:
        upload = self.uploads.start("me", "report.bin", 5)
        self.assertEqual(self.uploads.piece("me", upload, "0", b"abc"), 3)
        self.assertRaises(Conflict, self.uploads.piece, "me", upload, "0", b"abc")
        self.assertRaises(Conflict, self.uploads.seal, "me", upload)
        self.assertRaises(TooLarge, self.uploads.piece, "me", upload, "3", b"xyz")
        self.uploads.piece("me", upload, 3, b"de")
        staged = self.uploads.seal("me", upload)
        self.assertEqual(staged.path.read_bytes(), b"abcde")
        self.assertEqual(staged.path.stat().st_mode & 0o777, 0o600)
        self.uploads.drop(upload)
        self.assertFalse(staged.path.parent.exists())

    def test_another_session_cannot_touch_it(self) -> None:
        upload = self.uploads.start("me", "a", 1)
        self.assertRaises(NotFound, self.uploads.piece, "you", upload, "0", b"x")
        self.assertRaises(NotFound, self.uploads.piece, "me", "../../etc", "0", b"x")

    def test_bounds_names_and_idle_expiry(self) -> None:
        self.assertRaises(InvalidInput, self.uploads.start, "me", "a", -1)
        self.assertRaises(InvalidInput, self.uploads.start, "me", "a", "5")
        self.assertRaises(TooLarge, self.uploads.start, "me", "a", 1 << 62)
        self.assertRaises(TooLarge, self.uploads.piece, "me", self.uploads.start("me", "b", MAX_PIECE + 1), "0",
                          b"x" * (MAX_PIECE + 1))
        first = self.uploads.start("me", "c", 1)
        self.assertRaises(Conflict, self.uploads.start, "me", "d", 1)
        self.clock.advance(IDLE)
        self.uploads.start("me", "d", 1)
        self.assertRaises(NotFound, self.uploads.piece, "me", first, "0", b"x")

    def test_names_lose_their_folders(self) -> None:
        self.assertEqual(safe_name("C:\\Users\\me\\report.pdf"), "report.pdf")
        self.assertEqual(safe_name("../../etc/passwd"), "passwd")
        for bad in ("", "..", "a/..", "new\nline", "x" * 300):
            self.assertRaises(InvalidInput, safe_name, bad)


class DownloadTests(SynchronousTestCase):
    def test_offered_once_to_its_session_and_forgotten_when_idle(self) -> None:
        clock = Clock()
        downloads = BrowserDownloads(Path(self.mktemp()), clock, max_offered=1)
        download, folder = downloads.folder()
        (folder / "a.txt").write_bytes(b"hello")
        self.assertRaises(NotFound, downloads.offer, "me", download, folder / "missing", folder)
        download, folder = downloads.folder()
        (folder / "a.txt").write_bytes(b"hello")
        downloads.offer("me", download, folder / "a.txt", folder)
        self.assertRaises(Conflict, downloads.folder)
        self.assertRaises(NotFound, downloads.take, "you", download)
        offered = downloads.take("me", download)
        self.assertEqual(offered.path.read_bytes(), b"hello")
        self.assertRaises(NotFound, downloads.take, "me", download)
        downloads.drop(offered)
        self.assertFalse(folder.exists())
        download, folder = downloads.folder()
        (folder / "b").write_bytes(b"x")
        downloads.offer("me", download, folder / "b", folder)
        clock.advance(IDLE)
        downloads.expire()
        self.assertFalse(folder.exists())
        self.assertRaises(NotFound, downloads.take, "me", download)
