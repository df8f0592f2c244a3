"""A process-wide background worker for dashboard uploads.

Uploads are spooled to disk and their jobs recorded the moment they are
submitted; one thread then works through the queue with the ingest pool.
The page never waits, and job state lives in the store, so any tab or a
restarted page sees it.
"""

from __future__ import annotations

import logging
import queue
import threading

from engine.ingest import Ingestor
from engine.stages import FileResult
from engine.store import JobStatus

log = logging.getLogger(__name__)


class IngestWorker:
    def __init__(self, ingestor: Ingestor):
        self._ingestor = ingestor
        self._queue: queue.Queue = queue.Queue()
        self._active = 0
        self._idle = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="ingest-worker", daemon=True)
        self._thread.start()

    def submit_uploads(self, uploads, *, batch_id: str) -> list[FileResult]:
        """Queue uploads (name, bytes or file object) under ``batch_id``; returns those refused at once."""
        return [result for result in self.queue(uploads, batch_id=batch_id) if result.status == JobStatus.FAILED]

    def queue(self, uploads, *, batch_id: str) -> list[FileResult]:
        """Queue uploads under ``batch_id``: a result per upload, in order, ``queued`` with its job id
        or ``failed`` (refused at once, with the reason)."""
        items, results = self._ingestor.queue_uploads(uploads, batch_id=batch_id)
        if items:
            with self._idle:
                self._active += len(items)
            self._queue.put(items)
        return results

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued upload has finished (tests, shutdown)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout)

    def _fail_unfinished(self, items, exc: Exception) -> None:
        """Jobs the failed batch never finished end as failed, not queued forever."""
        jobs = self._ingestor.store.jobs
        for item in items:
            item.path.unlink(missing_ok=True)
            try:
                status = jobs.status(item.job_id)
                if status is not None and not status.finished:
                    jobs.finish(item.job_id, JobStatus.FAILED,
                                f"Import failed unexpectedly ({type(exc).__name__}: {exc}).")
            except Exception:
                log.exception("could not record the failure of job %s", item.job_id)

    def _loop(self) -> None:
        while True:
            items = self._queue.get()
            try:
                self._ingestor.run_items(items)
            except Exception as exc:  # the pipeline reports per file; this is a last resort
                log.exception("background import failed")
                self._fail_unfinished(items, exc)
            finally:
                with self._idle:
                    self._active -= len(items)
                    self._idle.notify_all()
