"""The project's one error tree.

Every error a stage raises on purpose is a :class:`PipelineError`. Its message says what failed and
where; ``hint`` says what to do about it. Errors from libraries (GitPython, requests, sigstore,
subprocess) are converted at the stage boundary, so a task never shows a traceback for them.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base of every error the pipeline raises on purpose.

    ``exit_code`` follows the release contract: 1 for a failure, 2 for bad input or configuration.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class ConfigError(PipelineError):
    """A configuration value or a command-line option is invalid."""

    exit_code = 2


class UsageError(ConfigError):
    """The user asked for something that cannot be done as asked."""


class ForkError(PipelineError):
    """Cloning, fetching, checking out or patching the kaniko fork failed."""


class PinError(ForkError):
    """The fork pin (fork/pin.json) is missing, malformed or contradicted by the remote."""

    exit_code = 2


class ReleaseSelectionError(ForkError):
    """No release tag matches what was asked for (bad input: the user named the tag or the fork)."""

    exit_code = 2


class ToolError(PipelineError):
    """A required external program (git, go, podman, registry, node) is missing or failed to start."""


class CompileError(PipelineError):
    """Compiling the fork's Go binaries failed."""


class ImageError(PipelineError):
    """Assembling or reading an OCI image or image layout failed."""


class RegistryError(PipelineError):
    """A registry request failed, or a registry answered something the client cannot accept."""


class ReferenceError_(RegistryError):
    """An image reference is malformed. (Named with a trailing underscore: ReferenceError is a builtin.)"""

    exit_code = 2


class ReproducibilityError(RegistryError):
    """A rebuild of a published version gives other digests than its exact version tag names."""


class AuthError(RegistryError):
    """Credentials are missing or were refused."""


class OriginError(RegistryError):
    """A registry named a URL the client does not follow (plain HTTP for a registry that has TLS)."""


class LimitError(RegistryError):
    """An answer, a blob or a list is over the size or count the client reads (never retried)."""


class SignError(PipelineError):
    """Signing an image or attaching its signature failed."""


class TrustRootError(SignError):
    """The public Sigstore instance's trust root could not be fetched (the network, not the input)."""


class VerifyError(PipelineError):
    """No valid signature was found for an image."""


class ContainerError(PipelineError):
    """Running a container with podman failed."""


class KanikoError(PipelineError):
    """Building the test image with the kaniko executor failed."""


class SmokeError(PipelineError):
    """The built test image failed its checks."""


class ConformanceError(PipelineError):
    """A published executor failed the conformance suite (a case, a variant's proof)."""


class RecordError(PipelineError):
    """The run record on disk is missing or unreadable."""
