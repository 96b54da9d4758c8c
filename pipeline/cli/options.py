"""A task's options, each declared once: name, default, help text and the setting it overrides.

tasks.py's ``task`` decorator takes a task's :class:`Option` declarations (see
:mod:`pipeline.cli.catalog`) and makes of them what invoke reads: the task's signature (invoke derives
the options, their kinds and defaults from it), its help dict, the repeatable options. On each run the
values come back as one :class:`Given` (of the task's own dataclass, :mod:`pipeline.cli.taskoptions`), which
also says which settings (``pipeline.*`` config keys) the given options override. Nothing here imports
invoke.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self


@dataclass(frozen=True)
class Option:
    """One option: its Python name (``--replace-version-tags`` is ``replace_version_tags``), its default
    (its kind follows: str, bool, int, float; None with ``repeatable``), its help text, and the setting a
    value the user gives overrides (None: the option is no setting)."""

    name: str
    default: Any
    help: str
    setting: str | None = None
    repeatable: bool = False  # given more than once, it is a list (invoke's `iterable`)

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name in _RESERVED:
            raise ValueError(f"option name {self.name!r} is not a usable parameter name")
        if not self.help.strip():
            raise ValueError(f"option {self.name!r} has no help text")
        if self.default is inspect.Parameter.empty:  # invoke would make it positional
            raise ValueError(
                f"option {self.name!r} needs a default: a positional one takes `--help` as its value"
            )


@dataclass(frozen=True)
class Given:
    """A task's option values as the user gave them (or their defaults), by name: ``o.layout``. Each task
    has a subclass whose fields are its options (:mod:`pipeline.cli.taskoptions`)."""

    settings_given: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False)

    @classmethod
    def of(cls, declared: Sequence[Option], values: Mapping[str, Any]) -> Self:
        """The values invoke passed for ``declared``, and the settings they override."""
        return cls(
            **{option.name: values[option.name] for option in declared},
            settings_given=overrides(declared, values),
        )

    def overrides(self) -> dict[str, Any]:
        """The settings these options override, by config key (see :func:`overrides`)."""
        return dict(self.settings_given)


_RESERVED = frozenset({"c", "of", "overrides", "settings_given"})


def signature(declared: Sequence[Option]) -> inspect.Signature:
    """The signature invoke reads for a task taking ``declared``: the context, then each option."""
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature(
        [inspect.Parameter("c", kind)]
        + [inspect.Parameter(option.name, kind, default=option.default) for option in declared]
    )


def help_texts(declared: Sequence[Option]) -> dict[str, str]:
    """The help dict invoke takes: option name -> its help text."""
    return {option.name: option.help for option in declared}


def repeatable(declared: Sequence[Option]) -> list[str]:
    return [option.name for option in declared if option.repeatable]


def overrides(declared: Sequence[Option], values: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that given options override, by key. An option left empty (or off) overrides
    nothing, so the configured value (invoke.yaml, INVOKE_PIPELINE_*) stands."""
    return {
        option.setting: list(value) if isinstance(value, list | tuple) else value
        for option in declared
        if option.setting is not None and (value := values.get(option.name))
    }
