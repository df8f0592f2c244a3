"""Import jobs: one row per file, so any tab, a reload or the API sees how an import stands."""

from __future__ import annotations

import uuid
from dataclasses import fields, replace

from engine.store.database import Database
from engine.store.types import Job, JobStatus

_COLUMNS = ", ".join(field.name for field in fields(Job))

INTERRUPTED_MESSAGE = ("Interrupted: the process stopped before this file finished. "
                       "Run the import again to complete it.")


def finish_job(conn, job_id: str, status: JobStatus, message: str, track_id: str | None) -> None:
    """End a job inside an open transaction (a new track ends its job in its own transaction)."""
    conn.execute(
        "UPDATE jobs SET status = ?, stage = 'done', progress = 1.0, message = ?, track_id = ?,"
        " updated_at = current_timestamp WHERE id = ?",
        [status.value, message, track_id, job_id],
    )


class Jobs:
    def __init__(self, db: Database):
        self._db = db

    def create(self, batch_id: str, sources: list[str]) -> list[str]:
        ids = [uuid.uuid4().hex for _ in sources]
        if not ids:  # an empty folder: nothing to queue (DuckDB refuses an empty executemany)
            return ids
        with self._db.transaction("queue jobs") as conn:
            conn.executemany(
                "INSERT INTO jobs (id, batch_id, source, status, stage) VALUES (?, ?, ?, ?, ?)",
                [[job_id, batch_id, source, JobStatus.QUEUED.value, JobStatus.QUEUED.value]
                 for job_id, source in zip(ids, sources)],
            )
        return ids

    def update(self, job_id: str, *, status: JobStatus, stage: str | None = None, progress: float = 0.0,
               message: str | None = None, track_id: str | None = None) -> None:
        self._db.execute(
            "update a job",
            "UPDATE jobs SET status = ?, stage = ?, progress = ?, message = ?, track_id = ?,"
            " updated_at = current_timestamp WHERE id = ?",
            [status.value, stage, progress, message, track_id, job_id],
        )

    def finish(self, job_id: str, status: JobStatus, message: str, track_id: str | None = None) -> None:
        with self._db.transaction("finish a job") as conn:
            finish_job(conn, job_id, status, message, track_id)

    def get(self, job_id: str) -> Job | None:
        rows = self._db.rows("read a job", f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", [job_id])
        return _job(rows[0]) if rows else None

    def status(self, job_id: str) -> JobStatus | None:
        rows = self._db.rows("read a job", "SELECT status FROM jobs WHERE id = ?", [job_id])
        return JobStatus(rows[0][0]) if rows else None

    def list(self, *, batch_id: str | None = None, limit: int = 200) -> list[Job]:
        """A batch's jobs in the order they were queued, or the most recent jobs of any batch."""
        if batch_id:
            rows = self._db.rows("list jobs", f"SELECT {_COLUMNS} FROM jobs WHERE batch_id = ?"
                                 " ORDER BY created_at, source LIMIT ?", [batch_id, limit])
        else:
            rows = self._db.rows("list jobs", f"SELECT {_COLUMNS} FROM jobs ORDER BY created_at DESC, source LIMIT ?",
                                 [limit])
        return [_job(row) for row in rows]

    def interrupt_stale(self) -> int:
        """Jobs left queued or running by a process that died are marked interrupted.

        Safe at open: DuckDB lets only one process write this file, so no
        other process can be running them.
        """
        rows = self._db.execute(
            "recover interrupted jobs",
            "UPDATE jobs SET status = ?, message = ?, updated_at = current_timestamp"
            " WHERE status IN (?, ?) RETURNING id",
            [JobStatus.INTERRUPTED.value, INTERRUPTED_MESSAGE, JobStatus.QUEUED.value, JobStatus.RUNNING.value],
        )
        return len(rows)


def _job(row: tuple) -> Job:
    job = Job(*row)
    return replace(job, status=JobStatus(job.status))
