"""The operator CLI in the test's own process: the ``stakehouse`` Typer app itself, run by Typer's
``CliRunner`` with the same arguments, environment, standard input and exit codes as
``python -m stakehouse.cli`` (a new interpreter costs ~1.5 s of imports per command; the suite runs
hundreds). ``tests/service/test_cli.py`` keeps real processes for what only a process shows: the
``python -m stakehouse.cli`` entry point and start-up failures.

A command configures structlog for itself (``stakehouse.cli.common.services_for``); its lines go to the
``sys.stderr`` of the moment (``stakehouse.logging``), the runner's while it runs, and the test process's
logging configuration is put back after each command."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping

import structlog
from typer.testing import CliRunner

from stakehouse.cli import app


@dataclasses.dataclass(frozen=True)
class Done:
    """What a finished command left: as ``subprocess.CompletedProcess`` names it."""

    returncode: int
    stdout: str
    stderr: str


def invoke(*args: str, env: Mapping[str, str | None] | None = None, input: str | None = None) -> Done:
    """Run ``stakehouse ARGS``; ``env`` is laid over the process environment (``None`` unsets)."""
    saved = structlog.get_config()
    try:
        result = CliRunner().invoke(app, list(args), env=env, input=input, catch_exceptions=True)
    finally:
        structlog.configure(**saved)
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # an uncaught error: a process would have printed its traceback and exited with 1
        stderr += "".join(traceback.format_exception(result.exception))
    return Done(result.exit_code, result.stdout, stderr)


__all__ = ["Done", "invoke"]
