"""A download's blocks go to the disk while the next ones come in: one fdatasync at a time, its error raised at the
end, never left unhandled."""

from __future__ import annotations

import gc
from typing import Any

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.storage.transfers import EarlyWriteback


class HeldWorker:
    """A worker thread that does nothing until told: the calls asked of it, each with the Deferred it gave."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[Any, ...], defer.Deferred[Any]]] = []

    def __call__(self, work: Any, *args: Any) -> defer.Deferred[Any]:
        d: defer.Deferred[Any] = defer.Deferred()
        self.calls.append((work, args, d))
        return d


class EarlyWritebackTests(SynchronousTestCase):
    def test_one_sync_at_a_time_and_the_end_waits_for_it(self) -> None:
        worker = HeldWorker()
        writeback = EarlyWriteback(worker, 7)
        writeback.written()
        writeback.written()  # the sync under way covers it
        self.assertEqual([(c[0].__name__, c[1]) for c in worker.calls], [("_data_synced", (7,))])
        worker.calls[0][2].callback(None)
        writeback.written()
        self.assertEqual(len(worker.calls), 2)
        end = defer.ensureDeferred(writeback.finished())
        self.assertNoResult(end)
        worker.calls[1][2].callback(None)
        self.successResultOf(end)

    def test_a_failing_download_waits_for_the_sync_under_way_before_its_file_closes(self) -> None:
        worker = HeldWorker()
        writeback = EarlyWriteback(worker, 7)
        writeback.written()
        settled = defer.ensureDeferred(writeback.settled())
        self.assertNoResult(settled)
        worker.calls[0][2].errback(OSError(5, "Input/output error"))
        self.successResultOf(settled)  # the sync's error is for finished(), not for the download's own failure

    def test_a_failed_sync_fails_the_end_and_is_never_left_unhandled(self) -> None:
        worker = HeldWorker()
        writeback = EarlyWriteback(worker, 7)
        writeback.written()
        worker.calls[0][2].errback(OSError(5, "Input/output error"))
        gc.collect()
        self.assertEqual(self.flushLoggedErrors(), [])
        writeback.written()  # later blocks still go
        worker.calls[1][2].callback(None)
        failure = self.failureResultOf(defer.ensureDeferred(writeback.finished()), OSError)
        self.assertIn("Input/output error", str(failure.value))
