"""``stakehouse jobs ...``: the job runner's history and its chunked runs."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from stakehouse import errors as dom
from stakehouse.cli.common import DbOpt, print_json, run_command, services_for
from stakehouse.operator.platform import run_progress_out

jobs_app = typer.Typer(help="Periodic jobs: what ran, chunked runs in progress.", no_args_is_help=True)


@jobs_app.command("history")
def jobs_history(limit: Annotated[int, typer.Option(min=1, max=1000)] = 50, db: DbOpt = None) -> None:
    """The last job runs (newest first) with their result lines."""
    s = services_for(db)
    print_json([{"job": r.job, "period": r.period, "dueAt": r.due_at.isoformat(), "result": r.result}
                for r in s.runner.history(limit)])


@jobs_app.command("runs")
def jobs_runs(
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    job: Annotated[str | None, typer.Option(help="Only this job, e.g. staking_rewards:ETH.")] = None,
    running: Annotated[bool, typer.Option(help="Only runs in progress.")] = False,
    db: DbOpt = None,
) -> None:
    """Chunked runs (in progress first): chunks planned and done, parameters, totals."""
    s = services_for(db)
    print_json([run_progress_out(p) for p in s.runner.runs(limit=limit, job=job, open_only=running)])


@jobs_app.command("watch")
def jobs_watch(
    job: Annotated[str, typer.Argument(help="The job, e.g. staking_rewards:ETH.")],
    period: Annotated[str, typer.Argument(help="The period, e.g. 2026-12-05.")],
    every: Annotated[float, typer.Option(min=0.1, max=60.0, help="Seconds between looks.")] = 1.0,
    db: DbOpt = None,
) -> None:
    """A progress bar of one chunked run (done by any worker) until it finishes; then its record."""
    s = services_for(db)

    def look() -> dict[str, object]:
        found = [p for p in s.runner.runs(limit=1000, job=job) if p.period == period]
        if not found:
            raise dom.NotFound(f"a chunked run of {job} for {period}")
        return run_progress_out(found[0])

    def go() -> None:
        run = look()
        planned = int(str(run["chunksPlanned"]))
        with typer.progressbar(length=planned, label=f"{job} {period}", file=None) as bar:
            shown = 0
            while True:
                done = int(str(run["chunksDone"]))
                bar.update(done - shown)
                shown = done
                if run["state"] == "finished":
                    break
                time.sleep(every)
                run = look()
        print_json(run)

    run_command(go)
