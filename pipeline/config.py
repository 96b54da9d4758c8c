"""Configuration: typed, validated once, and reported by name when a value is wrong.

Values come from Invoke's hierarchy (``invoke.yaml`` beside tasks.py, ``INVOKE_PIPELINE_*``
environment variables, command-line options), read under the ``pipeline`` key, plus the variables the
kaniko README uses (``DOCKER_HUB_USERNAME``, ``DOCKER_HUB_KANIKO_PAT``) and ``KANIKO_FORK_URL``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ("executor", "debug", "slim", "warmer")
DEFAULT_PLATFORMS = ("linux/amd64", "linux/arm64")
KNOWN_PLATFORMS = (
    "linux/amd64",
    "linux/arm64",
    "linux/s390x",
    "linux/ppc64le",
    "linux/riscv64",
)

# The defaults that tasks.py declares in its collection, so Invoke maps INVOKE_PIPELINE_<KEY> onto them.
DEFAULTS: dict[str, Any] = {
    "cache_dir": "",
    "fork_dir": "",
    "fork_url": "",
    "prerelease": False,
    "platforms": ",".join(DEFAULT_PLATFORMS),
    "variants": ",".join(VARIANTS),
    "prefix": "",
    "insecure": False,
    "ca_file": "",
    "go": "",
    "trust_config": "",
    "registry_mirror": "",
}


def default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "kaniko-pipeline"


def ca_bundle_from(env: Mapping[str, str]) -> Path | None:
    """The CA bundle the environment names (REQUESTS_CA_BUNDLE first, then SSL_CERT_FILE), or None."""
    for name in ("REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = (env.get(name) or "").strip()
        if value:
            return Path(value)
    return None


def option_label(name: str, from_command_line: bool = False) -> str:
    """How an error names a setting: the option the user typed, with the config key in brackets
    (``--platforms [pipeline.platforms]``), or the config key alone when it came from the config."""
    key = f"pipeline.{name}"
    return f"--{name.replace('_', '-')} [{key}]" if from_command_line else key


def _split_list(name: str, value: Any, label: str | None = None) -> tuple[str, ...]:
    label = label or option_label(name)
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [str(part).strip() for part in value]
    else:
        raise ConfigError(
            f"{label} must be a comma-separated list, not {value!r}",
            hint=f"set it in invoke.yaml or INVOKE_PIPELINE_{name.upper()}, e.g. 'a,b'",
        )
    items = [item for item in items if item]
    if not items:
        raise ConfigError(f"{label} is empty", hint="name at least one item")
    return tuple(dict.fromkeys(items))


def _as_bool(name: str, value: Any, label: str | None = None) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(
        f"{label or option_label(name)} must be true or false, not {value!r}",
        hint=f"set pipeline.{name} (or INVOKE_PIPELINE_{name.upper()}) to true or false",
    )


def _as_path(value: Any) -> Path | None:
    text = str(value or "").strip()
    return Path(text).expanduser() if text else None


def parse_platforms(value: Any, name: str = "platforms", label: str | None = None) -> tuple[str, ...]:
    label = label or option_label(name)
    platforms = _split_list(name, value, label)
    for platform in platforms:
        if platform not in KNOWN_PLATFORMS:
            raise ConfigError(
                f"unknown platform {platform!r} in {label}",
                hint="choose from " + ", ".join(KNOWN_PLATFORMS),
            )
    return platforms


def parse_variants(value: Any, name: str = "variants", label: str | None = None) -> tuple[str, ...]:
    label = label or option_label(name)
    variants = _split_list(name, value, label)
    for variant in variants:
        if variant not in VARIANTS:
            raise ConfigError(
                f"unknown image variant {variant!r} in {label}",
                hint="choose from " + ", ".join(VARIANTS),
            )
    return variants


def parse_prefixes(value: Any, label: str | None = None) -> tuple[str, ...]:
    """``pipeline.prefix``: one prefix, or several (a list, or comma-separated) for several registries."""
    if not value:
        return ()
    label = label or option_label("prefix")
    prefixes = _split_list("prefix", value, label)  # validated, repeats dropped: look for them in the input
    given = [str(p).strip() for p in (value.split(",") if isinstance(value, str) else value)]
    repeated = sorted({p for p in given if p and given.count(p) > 1})
    if repeated:
        raise ConfigError(
            f"{label} names {', '.join(repeated)} more than once",
            hint="name each destination once",
        )
    return prefixes


@dataclass(frozen=True)
class Settings:
    """Every setting the stages read, validated."""

    cache_dir: Path
    fork_dir: Path
    fork_url: str | None
    prerelease: bool
    platforms: tuple[str, ...]
    variants: tuple[str, ...]
    prefix: str | None
    insecure: bool
    go: str | None
    trust_config: Path | None
    registry_mirror: str | None
    ca_file: Path | None = None  # the CA bundle registries' TLS is verified against (a private CA)
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    # More destinations for a release: `prefix` may be a list (or --prefix given more than once); the
    # first is `prefix`, the rest are these.
    extra_prefixes: tuple[str, ...] = ()

    @property
    def prefixes(self) -> tuple[str, ...]:
        return ((self.prefix,) if self.prefix else ()) + self.extra_prefixes

    @property
    def ca_bundle(self) -> Path | None:
        """``ca_file``, else REQUESTS_CA_BUNDLE or SSL_CERT_FILE from the environment, else None."""
        return self.ca_file or ca_bundle_from(self.env)

    def insecure_for(self, *hosts: str | None) -> frozenset[str]:
        """The hosts ``--insecure`` turns TLS verification off for: these registries, nothing else."""
        return frozenset(h.lower() for h in hosts if h) if self.insecure else frozenset()

    @property
    def pin_file(self) -> Path:
        return self.fork_dir / "pin.json"

    @property
    def patches_dir(self) -> Path:
        return self.fork_dir / "patches"

    @property
    def build_layout(self) -> Path:
        """Where `invoke build` (and the release's build stage) writes the OCI layout by default."""
        return self.cache_dir / "build" / "layout"

    @property
    def record_file(self) -> Path:
        return self.cache_dir / "runs" / "last.json"

    @classmethod
    def load(
        cls,
        values: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        command_line: frozenset[str] = frozenset(),
    ) -> Settings:
        """Validate ``values`` (the ``pipeline`` section of Invoke's config) once, by name.

        ``command_line`` names the keys the user gave as options, so an error names the option typed.
        """
        env = dict(os.environ if env is None else env)

        def label(name: str) -> str:
            return option_label(name, name in command_line)

        known = {f.name for f in fields(cls)} - {"env", "extra_prefixes"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                "unknown configuration key " + ", ".join(f"pipeline.{key}" for key in unknown),
                hint="known keys: " + ", ".join(sorted(known)),
            )
        merged = {**DEFAULTS, **{k: v for k, v in values.items() if v is not None}}
        fork_url = str(merged["fork_url"] or env.get("KANIKO_FORK_URL") or "").strip() or None
        prefixes = parse_prefixes(merged["prefix"], label("prefix"))
        return cls(
            cache_dir=_as_path(merged["cache_dir"]) or default_cache_dir(env),
            fork_dir=_as_path(merged["fork_dir"]) or PROJECT_ROOT / "fork",
            fork_url=fork_url,
            prerelease=_as_bool("prerelease", merged["prerelease"], label("prerelease")),
            platforms=parse_platforms(merged["platforms"], label=label("platforms")),
            variants=parse_variants(merged["variants"], label=label("variants")),
            prefix=prefixes[0] if prefixes else None,
            insecure=_as_bool("insecure", merged["insecure"], label("insecure")),
            go=str(merged["go"] or "").strip() or None,
            trust_config=_as_path(merged["trust_config"]),
            registry_mirror=str(merged["registry_mirror"] or "").strip() or None,
            ca_file=_as_path(merged["ca_file"]),
            env=env,
            extra_prefixes=prefixes[1:],
        )
