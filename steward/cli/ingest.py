"""`steward ingest`: bring a retrieval collection up to date with a folder, with progress."""

from __future__ import annotations

from typing import Annotated

import typer

from steward import queues
from steward.cli.common import ConfigOption, run
from steward.client import connect, load_settings


def ingest_command(
    path: Annotated[
        str | None,
        typer.Argument(help="folder or file to ingest (default: the collection's `path`)"),
    ] = None,
    collection: Annotated[
        str, typer.Option("--collection", "-c", help="collection name from steward.yaml")
    ] = "handbook",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="tag stored with every chunk (repeatable)")
    ] = None,
    queue: Annotated[str, typer.Option(help="task queue of the workers")] = queues.DEFAULT,
    config: ConfigOption = None,
) -> None:
    """Ingest Markdown, text, HTML and PDF files: unchanged files are skipped, changed
    ones replaced, deleted ones removed. Exits 1 if some files could not be ingested.
    """
    import asyncio

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
    from temporalio.client import WorkflowFailureError, WorkflowQueryFailedError
    from temporalio.service import RPCError

    from steward.errors import OperationFailed
    from steward.ingest import ingest_request, start_ingest
    from steward.retrieval import IngestProgress

    async def go() -> IngestProgress:
        settings = load_settings(config)
        request = ingest_request(settings, collection, path, tag)
        client = await connect(settings)
        handle = await start_ingest(client, request, task_queue=queue)
        typer.echo(f"ingesting {request.root} into {collection!r} ({handle.id})")
        waiting = asyncio.ensure_future(handle.result())
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("files, {task.fields[chunks]} chunks stored"),
            transient=False,
        ) as bar:
            task = bar.add_task("ingest", total=None, chunks=0)
            while not waiting.done():
                await asyncio.wait({waiting}, timeout=0.25)
                try:
                    now = await handle.query("progress", result_type=IngestProgress)
                except (WorkflowQueryFailedError, RPCError):
                    continue  # e.g. between a run and its continuation; the next poll shows it
                bar.update(task, total=now.files_total or None, completed=now.files_seen)
                bar.update(task, chunks=now.chunks)
            try:
                done = waiting.result()
            except WorkflowFailureError as err:
                cause = err.cause
                raise OperationFailed(
                    f"ingest failed: {getattr(cause, 'message', cause)}"
                ) from None
            bar.update(task, total=done.files_total, completed=done.files_seen, chunks=done.chunks)
        return done

    done = run(go())
    typer.echo(
        f"{done.files_ingested} files ingested ({done.chunks} chunks), "
        f"{done.files_unchanged} unchanged, {done.removed_files} removed "
        f"({done.removed_chunks} chunks)"
    )
    for problem in done.problems:
        typer.secho(f"  not ingested: {problem.source}: {problem.reason}", fg="yellow", err=True)
    if done.problems:
        raise typer.Exit(1)
