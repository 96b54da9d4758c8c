"""The fork's deploy/Dockerfile, read and checked against the shape the image stage models.

The image stage does not run the Dockerfile: it assembles the final stages' content directly. That is
only right while the Dockerfile has the shape modelled here, so every instruction that adds content
(COPY, RUN, FROM) must match the model exactly; ENV, WORKDIR, VOLUME and ENTRYPOINT are read from it.
A changed Dockerfile stops the build with an ImageError that names what differs.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ImageError

FINAL_STAGES = {
    "warmer": "kaniko-warmer",
    "executor": "kaniko-executor",
    "debug": "kaniko-debug",
    "slim": "kaniko-slim",
}
_BUSYBOX_FROM = re.compile(r"busybox:musl@(sha256:[0-9a-f]{64})", re.ASCII)
_CONFIG_KINDS = ("ENV", "WORKDIR", "VOLUME", "ENTRYPOINT")

# Stage -> (its FROM, the content instructions in order). RUN in exec form is compared as parsed JSON.
MODEL: dict[str, tuple[str, tuple[str, ...]]] = {
    "kaniko-base-slim": (
        "scratch",
        (
            'RUN --mount=from=busybox,dst=/usr/ ["busybox", "sh", "-c", "mkdir -p /kaniko && chmod 777 /kaniko"]',
            "COPY --from=certs /etc/ssl/certs/ca-certificates.crt /kaniko/ssl/certs/",
            "COPY files/nsswitch.conf /etc/nsswitch.conf",
        ),
    ),
    "kaniko-base": (
        "kaniko-base-slim",
        (
            "COPY --from=builder --chown=0:0 /usr/local/bin/docker-credential-gcr /kaniko/docker-credential-gcr",
            "COPY --from=builder --chown=0:0 /usr/local/bin/docker-credential-ecr-login "
            "/kaniko/docker-credential-ecr-login",
            "COPY --from=builder --chown=0:0 /usr/local/bin/docker-credential-acr-env "
            "/kaniko/docker-credential-acr-env",
            "COPY --from=builder /kaniko/.docker /kaniko/.docker",
        ),
    ),
    "kaniko-warmer": ("kaniko-base", ("COPY --from=builder /src/out/warmer /kaniko/warmer",)),
    "kaniko-executor": ("kaniko-base", ("COPY --from=builder /src/out/executor /kaniko/executor",)),
    "kaniko-debug": (
        "kaniko-executor",
        (
            "COPY --from=builder /src/out/warmer /kaniko/warmer",
            "COPY --from=busybox /bin /busybox",
            'RUN ["/busybox/mkdir", "-p", "/bin"]',
            'RUN ["/busybox/ln", "-s", "/busybox/sh", "/bin/sh"]',
        ),
    ),
    "kaniko-slim": ("kaniko-base-slim", ("COPY --from=builder /src/out/executor /kaniko/executor",)),
}
# What the builder stage must still do for the binaries we compile ourselves.
BUILDER_MUST_RUN = (
    "RUN mkdir -p /kaniko/.docker",
    "RUN go install github.com/GoogleCloudPlatform/docker-credential-gcr/v2",
    "RUN go install github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login",
    "RUN go install github.com/chrismellard/docker-credential-acr-env",
)


@dataclass(frozen=True)
class Instruction:
    kind: str  # upper case: FROM, COPY, RUN, ENV, ...
    args: str  # the rest of the line, continuations joined, white space collapsed
    line: int

    @property
    def text(self) -> str:
        return f"{self.kind} {self.args}"


@dataclass
class BuildStage:
    name: str
    base: str
    line: int
    instructions: list[Instruction] = field(default_factory=list)


@dataclass(frozen=True)
class ImageConfig:
    """What a final stage sets in the image config."""

    env: tuple[tuple[str, str], ...]
    workdir: str | None
    volumes: tuple[str, ...]
    entrypoint: tuple[str, ...] | None

    def env_list(self) -> list[str]:
        return [f"{key}={value}" for key, value in self.env]


@dataclass(frozen=True)
class Dockerfile:
    path: Path
    busybox_digest: str
    configs: Mapping[str, ImageConfig]  # variant -> config


def _collapse(text: str) -> str:
    return " ".join(text.split())


def parse(text: str) -> list[BuildStage]:
    """Stages and their instructions (comments dropped, line continuations joined)."""
    stages: list[BuildStage] = []
    pending = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical = _collapse(pending + stripped)
        pending = ""
        if not logical:
            continue
        kind, _, args = logical.partition(" ")
        kind = kind.upper()
        if kind == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(BuildStage(name=name, base=words[0] if words else "", line=start))
        elif stages:
            stages[-1].instructions.append(Instruction(kind, args, start))
    return stages


def _same(expected: str, found: Instruction) -> bool:
    kind, _, args = expected.partition(" ")
    if kind != found.kind:
        return False
    if kind == "RUN":
        exp_flags, exp_json = _split_exec(args)
        got_flags, got_json = _split_exec(found.args)
        if exp_json is not None and got_json is not None:
            return exp_flags == got_flags and exp_json == got_json
    return _collapse(args) == found.args


def _split_exec(args: str) -> tuple[str, object | None]:
    index = args.find("[")
    if index < 0:
        return args, None
    try:
        return args[:index].strip(), json.loads(args[index:])
    except ValueError:
        return args, None


def _env_pairs(args: str, where: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise ImageError(f"{where}: cannot parse ENV {args!r}: {exc}") from exc
    if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        return [(words[0], args.split(None, 1)[1].strip() if len(words) > 1 else "")]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ImageError(f"{where}: ENV {args!r} is not KEY=VALUE")
        pairs.append((key, value))
    return pairs


def _json_or_words(args: str) -> list[str]:
    if args.startswith("["):
        try:
            value = json.loads(args)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return args.split()


def read(checkout_path: Path) -> Dockerfile:
    """Read and check ``deploy/Dockerfile`` of the checkout; ImageError names what differs."""
    path = checkout_path / "deploy" / "Dockerfile"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ImageError(
            f"the fork checkout has no {path.relative_to(checkout_path)}",
            hint="the image stage models the fork's deploy/Dockerfile; check the checkout",
        ) from exc
    return check(parse(text), path)


def check(stages: Sequence[BuildStage], path: Path) -> Dockerfile:
    hint = (
        "the fork's deploy/Dockerfile no longer has the shape pipeline/image/dockerfile.py models: update the "
        "model (and pipeline/image/assemble.py) to the new Dockerfile, then build again"
    )
    by_name = {stage.name: stage for stage in stages if stage.name}
    problems: list[str] = []
    busybox = by_name.get("busybox")
    digest = ""
    if busybox is None:
        problems.append("there is no `busybox` stage")
    else:
        match = _BUSYBOX_FROM.fullmatch(busybox.base)
        if not match:
            problems.append(
                f"line {busybox.line}: the busybox stage is FROM {busybox.base}, not busybox:musl@sha256:<digest>"
            )
        else:
            digest = match.group(1)
    builder = by_name.get("builder")
    if builder is None:
        problems.append("there is no `builder` stage")
    else:
        texts = [ins.text for ins in builder.instructions]
        for needed in BUILDER_MUST_RUN:
            if needed not in texts:
                problems.append(f"the builder stage no longer has `{needed}`")
        if not any(
            ins.kind == "RUN" and "make out/executor out/warmer" in ins.args for ins in builder.instructions
        ):
            problems.append("the builder stage no longer runs `make out/executor out/warmer`")
    if "certs" not in by_name:
        problems.append("there is no `certs` stage (the CA bundle)")
    for name, (base, expected) in MODEL.items():
        stage = by_name.get(name)
        if stage is None:
            problems.append(f"there is no `{name}` stage")
            continue
        if stage.base != base:
            problems.append(f"line {stage.line}: stage {name} is FROM {stage.base}, expected FROM {base}")
        content = [ins for ins in stage.instructions if ins.kind not in _CONFIG_KINDS]
        for index in range(max(len(expected), len(content))):
            want = expected[index] if index < len(expected) else None
            got = content[index] if index < len(content) else None
            if want is not None and got is not None and _same(want, got):
                continue
            if got is None:
                problems.append(f"stage {name}: `{want}` is missing")
            elif want is None:
                problems.append(f"line {got.line}: stage {name} has an unexpected `{got.text}`")
            else:
                problems.append(f"line {got.line}: stage {name} has `{got.text}`, expected `{want}`")
            break
        for ins in stage.instructions:
            if ins.kind in (
                "ARG",
                "USER",
                "SHELL",
                "ONBUILD",
                "LABEL",
                "EXPOSE",
                "HEALTHCHECK",
                "CMD",
                "ADD",
            ):
                problems.append(
                    f"line {ins.line}: stage {name} has `{ins.text}`, which the model does not handle"
                )
    if problems:
        raise ImageError(f"{path} changed shape: " + "; ".join(problems), hint=hint)
    configs = {variant: _config(by_name, stage, path) for variant, stage in FINAL_STAGES.items()}
    return Dockerfile(path=path, busybox_digest=digest, configs=configs)


def _config(by_name: Mapping[str, BuildStage], name: str, path: Path) -> ImageConfig:
    chain: list[BuildStage] = []
    current = name
    while current in by_name:
        stage = by_name[current]
        chain.insert(0, stage)
        current = stage.base
    env: dict[str, str] = {}
    workdir: str | None = None
    volumes: list[str] = []
    entrypoint: tuple[str, ...] | None = None
    for stage in chain:
        for ins in stage.instructions:
            where = f"{path}:{ins.line}"
            if ins.kind == "ENV":
                for key, value in _env_pairs(ins.args, where):
                    env[key] = value
            elif ins.kind == "WORKDIR":
                workdir = (
                    ins.args if ins.args.startswith("/") else f"{(workdir or '/').rstrip('/')}/{ins.args}"
                )
            elif ins.kind == "VOLUME":
                volumes.extend(v for v in _json_or_words(ins.args) if v not in volumes)
            elif ins.kind == "ENTRYPOINT":
                entrypoint = (
                    tuple(_json_or_words(ins.args))
                    if ins.args.startswith("[")
                    else ("/bin/sh", "-c", ins.args)
                )
    return ImageConfig(
        env=tuple(env.items()),
        workdir=workdir,
        volumes=tuple(volumes),
        entrypoint=entrypoint,
    )
