"""Keep each embedded collection's HNSW index built, without stopping the worker.

Qdrant Edge searches a segment without an index by comparing the query with every point
in it, and builds an index only when asked (`optimize`). Building one for 50,000 chunks
takes half a minute or more and holds Python's interpreter lock throughout, which would
stall every workflow and heartbeat of the worker it ran in. So the indexer builds in a
child process, on a copy of the shard, while searches and writes go on against the
original; the copy is swapped in with the writes made meanwhile applied (`Collection`).

A build starts once a collection owes one (enough points written since its last build,
`Collection.owes_index`) and has had no write for `quiet_seconds`, so an ingest in
progress is left to finish first. Until then the new points are searched by comparison,
which is quick at that size. A build that fails is logged and left: searches stay
correct, only slower, and the next write tries again.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from activities.edge.collection import Collection

log = logging.getLogger(__name__)

BUILD = (
    "import os, sys\n"
    "from qdrant_edge import EdgeShard\n"
    "os.nice(10)\n"  # the worker's searches and model calls come first
    "shard = EdgeShard.load(sys.argv[1])\n"
    "shard.optimize()\n"
    "shard.close()\n"
)
"""The child's whole program: open the copy, let Edge's optimizers run, flush it."""


class IndexBuildFailed(RuntimeError):
    """The child process that builds an index exited with an error."""


class Indexer:
    """Builds indexes in the background for the collections of one store."""

    def __init__(
        self,
        lock: AbstractContextManager[object],
        collection: Callable[[str], Collection],
        *,
        quiet_seconds: float,
    ) -> None:
        self.quiet_seconds = quiet_seconds
        self._lock, self._collection = lock, collection
        self._due: dict[str, float] = {}  # collection -> when it was last written
        self._wake = threading.Condition()
        self._one_at_a_time = threading.Lock()  # the background thread, or a caller of build
        self._thread: threading.Thread | None = None
        self._child: subprocess.Popen[str] | None = None
        self._closing = False
        self.building: str | None = None

    def wrote(self, name: str, owed: bool) -> None:
        """`name` was written; schedule its build if it `owed` one (or wait longer for
        quiet if one is scheduled).
        """
        with self._wake:
            if owed or name in self._due:
                self._due[name] = time.monotonic()
                if self._thread is None and not self._closing:
                    self._thread = threading.Thread(
                        target=self._run, name="steward-edge-indexer", daemon=True
                    )
                    self._thread.start()
                self._wake.notify()

    def due(self, name: str) -> bool:
        """Whether `name` waits for a build."""
        with self._wake:
            return name in self._due

    def build(self, name: str) -> None:
        """Build `name`'s index now, in a child process, and swap it in (or raise)."""
        with self._one_at_a_time:
            with self._wake:
                self._due.pop(name, None)
            self._build(name)

    def _build(self, name: str) -> None:
        with self._lock:
            collection = self._collection(name)
            built, settled = collection.copy_for_index()
        try:
            with self._wake:
                if self._closing:
                    raise IndexBuildFailed("the store is closing")
                self.building = name
                self._child = subprocess.Popen(
                    [sys.executable, "-c", BUILD, str(built)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            _, errors = self._child.communicate()
            if self._child.returncode != 0:
                last = errors.strip().splitlines()[-1:] or [f"exit {self._child.returncode}"]
                raise IndexBuildFailed(last[0])
            with self._lock:
                collection.replace(built, settled)
                if not collection.owes_index:  # writes meanwhile may have scheduled another
                    with self._wake:
                        self._due.pop(name, None)
        except BaseException:
            with self._lock:
                collection.abandon(built)
            raise
        finally:
            with self._wake:
                self._child, self.building = None, None

    def close(self) -> None:
        """Stop: end a build in progress (it starts again on the next open)."""
        with self._wake:
            self._closing = True
            if self._child is not None:
                self._child.kill()
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while (name := self._next()) is not None:
            try:
                self.build(name)
            except Exception as err:  # the thread goes on: searches are right, only slower
                if not self._closing:
                    log.warning(
                        "the index of %r was not built (%s); until it is, searches compare "
                        "the query with each point written since the last build",
                        name,
                        err,
                    )

    def _next(self) -> str | None:
        """The next collection to build once it has been quiet long enough; None to stop."""
        with self._wake:
            while not self._closing:
                if not self._due:
                    self._wake.wait()
                    continue
                name, written = min(self._due.items(), key=lambda item: item[1])
                wait = written + self.quiet_seconds - time.monotonic()
                if wait <= 0:
                    del self._due[name]
                    return name
                self._wake.wait(wait)
            return None
