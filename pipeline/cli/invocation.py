"""How a task is made and run: options from their one declaration (:mod:`pipeline.cli.options`), the
project's errors as an exit status with no traceback, the settings with the options given, and the
output (text, or one JSON object with --json)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from invoke.context import Context
from invoke.exceptions import Exit
from invoke.parser.argument import Argument
from invoke.tasks import Task as InvokeTask

from pipeline import config
from pipeline.cli import options
from pipeline.cli.options import Given
from pipeline.errors import PipelineError

G = TypeVar("G", bound=Given)


class Task(InvokeTask[Any]):
    """An invoke task that keeps its options' declarations, and its help after get_arguments() (which
    pops invoke's help dict)."""

    def __init__(
        self,
        body: Callable[..., Any],
        *,
        declared: Sequence[options.Option],
        given: type[Given],
        **kwargs: Any,
    ) -> None:
        super().__init__(body, **kwargs)
        self.options = tuple(declared)
        self.given = given

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        kept = dict(self.help)
        try:
            return list(super().get_arguments(ignore_unknown_help))
        finally:
            self.help = kept


def task(
    declared: Sequence[options.Option], given: type[G], *, guard: bool = True, **kwargs: Any
) -> Callable[[Callable[[Context, G], None]], Task]:
    """invoke.task for a body ``(c, o)``: the signature and help invoke reads come from ``declared``, the
    body gets the values as ``o``, a ``given`` (the task's typed options, :mod:`pipeline.cli.taskoptions`)
    and, with ``guard``, the project's errors become invoke.Exit.

    No automatic short flags: Invoke derives them from letters of the option names (-o for --force,
    -f for --fork-url, and `--` for --report-dir once the letters run out), which misleads more than it helps.
    """

    def decorate(fn: Callable[[Context, G], None]) -> Task:
        body = guarded(fn) if guard else fn

        @functools.wraps(fn)
        def wrapper(c: Context, **values: Any) -> None:
            body(c, given.of(declared, values))

        wrapper.__signature__ = options.signature(declared)  # type: ignore[attr-defined]
        return Task(
            wrapper,
            declared=declared,
            given=given,
            auto_shortflags=False,
            help=options.help_texts(declared),
            iterable=options.repeatable(declared),
            **kwargs,
        )

    return decorate


class Terminated(BaseException):
    """SIGTERM (a CI cancel, ``kill``) as an exception, so every ``finally`` and ``with`` cleans up."""


def _raise_terminated(signum: int, frame: object) -> None:
    _signal_children(signum)  # git, go, podman: a clean-up that waits for one must not wait forever
    raise Terminated(signum)


def _signal_children(signum: int) -> None:
    """Pass ``signum`` on to this process's descendants (git's remote helper holds git's pipes too)."""
    for pid in _descendants("self"):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def _descendants(pid: str) -> list[int]:
    """The processes under ``pid``, children first (Linux lists them per thread in /proc)."""
    found: list[int] = []
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            children = [int(child) for child in listing.read_text().split()]
        except (OSError, ValueError):
            continue
        for child in children:
            found += [child, *_descendants(str(child))]
    return found


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """While a task runs, SIGTERM unwinds it like Ctrl-C does: private files are removed, then exit 143."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's errors into invoke.Exit: a message, an exit status, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with _sigterm_cleans_up():
                return fn(*args, **kwargs)
        except PipelineError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None
        except Terminated:
            raise Exit(
                "terminated (SIGTERM); temporary files were removed", code=128 + signal.SIGTERM
            ) from None

    return wrapper


def settings_of(c: Context, o: Given) -> config.Settings:
    """The validated settings: invoke's config (invoke.yaml, INVOKE_PIPELINE_*) with the options given."""
    values = {key: c.config.pipeline[key] for key in c.config.pipeline}
    given = o.overrides()
    values.update(given)
    return config.Settings.load(values, command_line=frozenset(given))


def emit(result: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    else:
        sys.stdout.write(human(result).rstrip("\n") + "\n")
    sys.stdout.flush()
