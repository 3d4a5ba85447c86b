"""Ingest a folder into a retrieval collection: scan, embed in batches, publish, prune.

Only references and counts pass through history: a page of file names and hashes from the
scan, then for each new or changed file a batch activity per 64 chunks (the activity
reads the file itself); the last batch publishes the file's new version and drops its
old one. A file that cannot be read is recorded as a problem and the ingest goes on. After
the last page, chunks of files no longer in the folder are removed.

Re-ingest is incremental (unchanged files are skipped by hash) and every step is
idempotent, so a crash resumes where it was without duplicates. A long ingest continues
as new between pages before its history grows large.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from steward import errors
from steward.retrieval import (
    DocumentBatch,
    FileProblem,
    FileRef,
    FileVersion,
    IngestProgress,
    IngestState,
    ScanRequest,
)
from workflows.base import RunInput, require_input
from workflows.options import BAD_INPUT

with workflow.unsafe.imports_passed_through():
    from activities.retrieval import RetrievalActivities

INGEST_TIMEOUT = timedelta(minutes=10)
INGEST_HEARTBEAT = timedelta(seconds=60)
INGEST_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
    # Bad input, and the retrieval errors the catalogue says no retry mends.
    non_retryable_error_types=[errors.BAD_INPUT, *errors.non_retryable("retrieval")],
)
MAX_PROBLEMS = 200
"""Problems listed in the result; the count beyond is kept, the details are not."""
CONTINUE_AFTER_EVENTS = 5_000
"""Continue as new between pages past this many events (Temporal warns at 10,240)."""


@workflow.defn(name="IngestWorkflow", failure_exception_types=BAD_INPUT)
class IngestWorkflow:
    """Bring a collection up to date with a folder."""

    def __init__(self) -> None:
        self.progress = IngestProgress()

    @workflow.query(name="progress")
    def current(self) -> IngestProgress:
        """Files and chunks so far, for the progress bar."""
        return self.progress

    @workflow.run
    async def run(self, sent: RunInput) -> IngestProgress:
        """Ingest page by page; the result counts files, chunks, removals and problems
        (input: an IngestState).
        """
        state = require_input(sent, IngestState)
        self.progress = state.progress
        offset: int | None = state.offset
        while offset is not None:
            page = await workflow.execute_activity_method(
                RetrievalActivities.scan_documents,
                ScanRequest(ingest=state.request, offset=offset),
                start_to_close_timeout=INGEST_TIMEOUT,
                heartbeat_timeout=INGEST_HEARTBEAT,
                retry_policy=INGEST_RETRY,
            )
            self.progress.files_total = page.total
            for problem in page.problems:
                self._problem(problem)
            for ref in page.files:
                if ref.status == "unchanged":
                    self.progress.files_unchanged += 1
                else:
                    await self._ingest(state, ref)
                self.progress.files_seen += 1
            self.progress.files_seen += len(page.problems)
            offset = page.next_offset
            if offset is not None and workflow.info().get_current_history_length() > (
                CONTINUE_AFTER_EVENTS
            ):
                workflow.continue_as_new(
                    IngestState(request=state.request, offset=offset, progress=self.progress)
                )
        pruned = await workflow.execute_activity_method(
            RetrievalActivities.prune_documents,
            state.request,
            start_to_close_timeout=INGEST_TIMEOUT,
            retry_policy=INGEST_RETRY,
        )
        self.progress.removed_files = len(pruned.removed_files)
        self.progress.removed_chunks = pruned.removed_chunks
        self.progress.done = True
        return self.progress

    async def _ingest(self, state: IngestState, ref: FileRef) -> None:
        """All batches of one file, then publish; on a bad file, discard what was written."""
        version = FileVersion(ingest=state.request, file=ref)
        start, stored = 0, 0
        try:
            published = False
            while not published:
                done = await workflow.execute_activity_method(
                    RetrievalActivities.ingest_document,
                    DocumentBatch(
                        ingest=state.request, file=ref, start=start, ingested_at=workflow.now()
                    ),
                    start_to_close_timeout=INGEST_TIMEOUT,
                    heartbeat_timeout=INGEST_HEARTBEAT,
                    retry_policy=INGEST_RETRY,
                )
                start += done.stored
                stored = done.total_chunks
                published = done.published
        except ActivityError as failed:
            cause = failed.cause
            if not isinstance(cause, ApplicationError) or cause.type != errors.BAD_DOCUMENT:
                raise
            self._problem(FileProblem(source=ref.source, reason=_message(cause)))
            await workflow.execute_activity_method(
                RetrievalActivities.discard_document,
                version,
                start_to_close_timeout=INGEST_TIMEOUT,
                retry_policy=INGEST_RETRY,
            )
            return
        self.progress.files_ingested += 1
        self.progress.chunks += stored

    def _problem(self, problem: FileProblem) -> None:
        workflow.logger.warning("not ingested: %s: %s", problem.source, problem.reason)
        if len(self.progress.problems) < MAX_PROBLEMS:
            self.progress.problems.append(problem)


def _message(error: ApplicationError) -> str:
    text = error.message
    prefix = text.split(": ", 1)
    return prefix[1] if len(prefix) == 2 else text
