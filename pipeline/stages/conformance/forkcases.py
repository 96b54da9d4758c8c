"""The fork's own integration Dockerfiles (``integration/dockerfiles/Dockerfile_*`` of the checkout being
released) as conformance cases.

The fork builds each with the build arguments and kaniko flags listed in ``integration/images.go``
(``argsMap``, ``envsMap``, ``additionalKanikoFlagsMap``), read from the checkout, with the
``integration`` directory as the context. A case runs when every base it names has an offline stand-in
(``scratch``, ``busybox``, ``debian:12.10``/``debian:latest``, or an earlier stage) and nothing in it
needs the network; any other case is listed as skipped with the reason, never dropped. Their results
are reported (counts, differences) but do not gate the release: they include kaniko behaviours that
differ from buildah and Docker on purpose or by long-standing bugs (see README 'Conformance').
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from pipeline.stages.conformance.bases import BUSYBOX_TAGS, DEBIAN_TAGS, MIRROR_HOST
from pipeline.stages.conformance.cases import Case

PREFIX = "fork-"
_MAP = re.compile(r"var (\w+) = map\[string\]\[\]string\{(.*?)\n\}", re.S)
_ENTRY = re.compile(r'"(Dockerfile_\w+)":\s*\{(.*?)\}', re.S)
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", re.I | re.M)
_ARG = re.compile(r"^\s*ARG\s+(\w+)(?:=(\S*))?", re.I | re.M)
_NETWORK = re.compile(
    r"^\s*(?:RUN|ADD)\b.*?(apt-get|apk\s+add|yum|dnf|microdnf|curl|wget|git\s+clone|pip\s+install|https?://)",
    re.I | re.M,
)
# Cases the fork itself builds in another way, and paths whose content is the time of the build.
SPECIAL_SKIPS = {
    "Dockerfile_git_buildcontext": "the fork builds it from a git context (a GitHub URL), not from a directory",
}
TIME_DEPENDENT = {"/date": "RUN date > /date: the time of the build"}
STANDINS = (
    {"scratch"}
    | {f"busybox:{t}" for t in BUSYBOX_TAGS}
    | {f"{MIRROR_HOST}/busybox:{t}" for t in BUSYBOX_TAGS}
    | {f"debian:{t}" for t in DEBIAN_TAGS}
)


_VARIABLE = re.compile(r"\$\{(\w+)(?::([-+])([^}]*))?\}|\$(\w+)")


def _substitute(match: re.Match[str], args: dict[str, str]) -> str:
    """``$NAME``, ``${NAME}``, ``${NAME:-default}`` and ``${NAME:+alternative}``, as the Dockerfile has them."""
    value = args.get(match[1] or match[4], "")
    if match[2] == "-":
        return value or match[3]
    if match[2] == "+":
        return match[3] if value else ""
    return value


def _maps(images_go: Path) -> dict[str, dict[str, list[str]]]:
    text = images_go.read_text(encoding="utf-8") if images_go.is_file() else ""
    out: dict[str, dict[str, list[str]]] = {}
    for name, body in _MAP.findall(text):
        out[name] = {key: _STRING.findall(values) for key, values in _ENTRY.findall(body)}
    return out


def _normal(image: str) -> str:
    name = image.removeprefix("docker.io/").removeprefix("library/")
    if "@" in name:
        return name
    return name if ":" in name.rsplit("/", 1)[-1] or name == "scratch" else f"{name}:latest"


def base_images(text: str, build_args: Mapping[str, str]) -> list[tuple[str, str]]:
    """Each FROM's image that is not an earlier stage: (the name with the build arguments put in, as
    written)."""
    args = {name: default or "" for name, default in _ARG.findall(text)}
    args.update(build_args)
    stages: set[str] = set()
    out = []
    for image, alias in _FROM.findall(text):
        resolved = _VARIABLE.sub(lambda m: _substitute(m, args), image).replace('"', "")
        resolved = resolved.replace("'", "")
        if resolved.lower() not in stages:
            out.append((resolved, image))
        if alias:
            stages.add(alias.lower())
    return out


def standin_reason(resolved: str, written: str) -> str:
    """Why this base cannot be had offline (it has no stand-in), or ""."""
    if "@sha256:" in resolved:
        return f"its base {resolved} is pinned by a digest that cannot be reproduced offline"
    if _normal(resolved) not in STANDINS:
        return (
            f"its base {resolved or written} has no offline stand-in "
            f"(only scratch, busybox, {MIRROR_HOST}/busybox and debian:12.10)"
        )
    return ""


def skip_reason(
    text: str, build_args: Mapping[str, str], base_reason: Callable[[str, str], str] = standin_reason
) -> str:
    """Why this Dockerfile cannot run here, or "": a base ``base_reason`` cannot have (offline: one
    with no stand-in), or a step that needs the network."""
    for resolved, written in base_images(text, build_args):
        reason = base_reason(resolved, written)
        if reason:
            return reason
    network = _NETWORK.search(text)
    if network:
        return f"it needs the network ({network.group(1)})"
    return ""


def load(checkout: Path) -> list[Case]:
    """Every ``integration/dockerfiles/Dockerfile_*`` of the fork checkout, as cases (executor only)."""
    directory = Path(checkout) / "integration" / "dockerfiles"
    if not directory.is_dir():
        return []
    return [replace(case, suite="fork") for case in load_dockerfiles(directory, PREFIX)]


def load_dockerfiles(directory: Path, prefix: str) -> list[Case]:
    """A folder of Dockerfiles that share the folder's parent as their context; the arguments of each
    from the runner's ``images.go`` beside the folder, when there is one (the fork's layout)."""
    integration = directory.parent
    maps = _maps(integration / "images.go")
    args_map, env_map = maps.get("argsMap", {}), maps.get("envsMap", {})
    flags_map = maps.get("additionalKanikoFlagsMap", {})
    cases = []
    for path in sorted(directory.glob("Dockerfile*")):
        if path.suffix == ".dockerignore" or not path.is_file():
            continue
        build_args = dict(item.split("=", 1) for item in env_map.get(path.name, []) if "=" in item)
        build_args.update(dict(item.split("=", 1) for item in args_map.get(path.name, []) if "=" in item))
        target, flags = "", []
        for flag in flags_map.get(path.name, []):
            if flag.startswith("--target="):
                target = flag.split("=", 1)[1]
            elif flag.startswith("--"):
                flags.append(flag)
        text = path.read_text(encoding="utf-8", errors="replace")
        cases.append(
            Case(
                name=prefix + _case_name(path.name),
                directory=integration,
                dockerfile=f"{directory.name}/{path.name}",
                args=tuple(flags),
                build_args=build_args,
                target=target,
                skip=SPECIAL_SKIPS.get(path.name) or skip_reason(text, build_args),
                variants=("executor",),
                ignore={p: why for p, why in TIME_DEPENDENT.items() if f"> {p}" in text},
                gating=False,
                description=f"{integration.name}/{directory.name}/{path.name}",
            )
        )
    return cases


def _case_name(file_name: str) -> str:
    name = re.sub(r"^Dockerfile[_.-]?", "", file_name).lower()
    return re.sub(r"[^a-z0-9.-]+", "-", name).strip("-.") or "dockerfile"
