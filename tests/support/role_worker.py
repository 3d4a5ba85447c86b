"""One role of Steward's workers in its own process, through the real entry, on the fake model.

`python -m tests.support.role_worker [--script S --calls-log L] --role R --queue Q --config F`
installs the fake model (answering from the JSON script, logging each call to the JSONL
file; with no script, any model call fails) and then runs `workers.run.main` with the
remaining arguments: the production wiring, activities, credentials from this process's
environment and span export, untouched. The one addition is a log line per worker naming
the task queue and every activity registered on it, so a test can prove from a process's
log what that process serves.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio.activity import _Definition
from temporalio.worker import Worker

import workers.run
from tests.support.fake_model import FakeModel, install_fake_model
from workers.build import build_workers

REGISTERED = "registered on queue %s: activities=%s"
"""The log line each worker writes once built; tests parse it."""


def activity_names(worker: Worker) -> list[str]:
    """The names of the activities a worker was built with, sorted."""
    callables = worker.config().get("activities") or ()
    return sorted(_Definition.must_from_callable(fn).name or "" for fn in callables)


def _logging_registrations(
    build: Callable[..., list[Worker]],
) -> Callable[..., list[Worker]]:
    def build_and_log(*args: Any, **kwargs: Any) -> list[Worker]:
        built = build(*args, **kwargs)
        for worker in built:
            logging.getLogger("steward").info(
                REGISTERED, worker.task_queue, ",".join(activity_names(worker))
            )
        return built

    return build_and_log


def main() -> None:
    """Install the fake model, then hand the rest of the command line to the real entry."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--script", type=Path)
    parser.add_argument("--calls-log", type=Path)
    args, rest = parser.parse_known_args()
    fake = (
        FakeModel.from_script(args.script, calls_log=args.calls_log)
        if args.script
        else FakeModel(calls_log=args.calls_log)
    )
    install_fake_model(fake)
    # The entry looks the builder up in its own module at call time.
    setattr(workers.run, "build_workers", _logging_registrations(build_workers))  # noqa: B010
    workers.run.main(rest)


if __name__ == "__main__":
    main()
