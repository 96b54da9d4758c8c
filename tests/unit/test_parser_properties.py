"""Property tests (Hypothesis) for the parsers that read what registries and users send.

For every input, each parser either accepts it (and then the result is in the grammar) or raises the
project's own error (a PipelineError subclass): never a ValueError, KeyError, TypeError or
AttributeError from inside. EXAMPLES inputs per property; the settings are derandomized so a failure
reproduces, and the count is printed (`pytest -s`) so a run states what it checked.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, is_hypothesis_test, settings
from hypothesis import strategies as st

from pipeline.errors import ConfigError, ImageError, PipelineError, ReferenceError_
from pipeline.oci import digests, mediatype
from pipeline.oci.manifest import Index, Manifest, parse
from pipeline.policy import tagplan
from pipeline.registry.auth import Challenge, parse_challenges
from pipeline.registry.reference import Reference, validate_tag

EXAMPLES = 1000
PROPERTY = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)
HEX64 = re.compile(r"[0-9a-f]{64}", re.ASCII)
ASCII_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", re.ASCII)

# Text that is near the grammar: its alphabet, plus newlines, spaces, non-ASCII digits and letters.
near = st.text(
    alphabet=st.sampled_from(list("abcdef0123456789ABZ:@/._-[]sha256\n\r\t \u0661\u00e9\u00b2\u212a")),
    max_size=90,
)
any_text = st.one_of(st.text(max_size=200), near)
hexes = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
digest_like = st.one_of(
    any_text,
    hexes.map(lambda h: "sha256:" + h),
    st.tuples(hexes, st.sampled_from(["\n", "\r\n", " ", "\u0661", "", "A"])).map(
        lambda p: "sha256:" + p[0] + p[1]
    ),
)
tag_like = st.one_of(any_text, st.from_regex(ASCII_TAG, fullmatch=True))
reference_like = st.one_of(
    any_text,
    st.tuples(
        st.sampled_from(["", "docker.io/", "127.0.0.1:5000/", "reg.io:99999/", "a..b/", "x.localhost/"]),
        st.from_regex(r"[a-z0-9]+(?:[._-][a-z0-9]+)*", fullmatch=True),
        st.sampled_from(["", ":v1", ":v1\n", ":vé", "@sha256:" + "a" * 64, "@sha256:" + "a" * 64 + "\n"]),
    ).map("".join),
)


def _count(name: str) -> None:
    print(f"hypothesis: {EXAMPLES} examples for the {name} parser")


@PROPERTY
@given(digest_like)
def test_digest_parser(text: str) -> None:
    try:
        result = digests.validate(text)
    except ImageError:
        return
    algorithm, _, encoded = result.partition(":")
    assert result == text and algorithm == "sha256" and HEX64.fullmatch(encoded)


@PROPERTY
@given(tag_like)
def test_tag_parser(text: str) -> None:
    try:
        validate_tag(text)
    except ReferenceError_:
        accepted = False
    else:
        accepted = True
    try:
        tagplan.check_tag(text)
    except ConfigError:
        planned = False
    else:
        planned = True
    assert accepted == planned == bool(ASCII_TAG.fullmatch(text))  # one grammar, ASCII, whole


@PROPERTY
@given(reference_like)
def test_reference_parser(text: str) -> None:
    try:
        ref = Reference.parse(text)
    except ReferenceError_:
        return
    rendered = str(ref)
    assert rendered.isascii() and not any(ch.isspace() for ch in rendered)
    assert ref.tag is None or ASCII_TAG.fullmatch(ref.tag)
    assert ref.digest is None or digests.validate(ref.digest) == ref.digest
    assert Reference.parse(rendered) == ref  # what it writes, it reads back the same


quoted = st.text(max_size=30).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"')
header_like = st.one_of(
    any_text,
    st.lists(
        st.one_of(
            st.sampled_from(
                ["Bearer", "Basic", "bearer", ",", " ", "=", '"', "realm=", "service=", "scope="]
            ),
            quoted,
            st.text(max_size=10),
        ),
        max_size=20,
    ).map("".join),
)


@PROPERTY
@given(header_like)
def test_www_authenticate_parser(header: str) -> None:
    challenges = parse_challenges(header)  # never raises: a header it cannot read has no challenges
    for challenge in challenges:
        assert isinstance(challenge, Challenge)
        assert challenge.scheme and challenge.scheme == challenge.scheme.lower()
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in challenge.params.items())
        assert isinstance(challenge.realm, str) and isinstance(challenge.scopes, list)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
descriptor = st.fixed_dictionaries(
    {"mediaType": st.sampled_from([mediatype.OCI_MANIFEST, "x", 3]), "digest": digest_like},
    optional={"size": st.one_of(st.integers(), st.text(max_size=3)), "platform": json_values},
)
manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "schemaVersion": st.sampled_from([2, 1, "2"]),
        "mediaType": st.sampled_from([mediatype.OCI_MANIFEST, mediatype.OCI_INDEX, "text/plain", 7]),
        "config": st.one_of(descriptor, json_values),
        "layers": st.one_of(st.lists(descriptor, max_size=3), json_values),
        "manifests": st.one_of(st.lists(descriptor, max_size=3), json_values),
        "annotations": json_values,
        "subject": st.one_of(descriptor, json_values),
        "artifactType": json_values,
    },
)


@PROPERTY
@given(st.one_of(manifest_like.map(json.dumps), json_values.map(json.dumps), any_text).map(str.encode))
def test_manifest_parser(data: bytes) -> None:
    for media_type in (None, mediatype.OCI_MANIFEST, mediatype.OCI_INDEX):
        try:
            item: Any = parse(data, media_type)
        except PipelineError:
            continue
        assert isinstance(item, Manifest | Index)
        for desc in [*getattr(item, "layers", []), *getattr(item, "manifests", [])]:
            assert digests.validate(desc.digest) == desc.digest


def test_every_property_runs_the_stated_number_of_examples() -> None:
    """Every property test of this module runs under PROPERTY (EXAMPLES inputs, derandomized), so the
    count printed is the count run; a property added without it would run Hypothesis's default 100."""
    properties = {name: test for name, test in globals().items() if is_hypothesis_test(test)}
    assert sorted(properties) == [
        "test_digest_parser",
        "test_manifest_parser",
        "test_reference_parser",
        "test_tag_parser",
        "test_www_authenticate_parser",
    ]
    for name, test in properties.items():
        used = test._hypothesis_internal_use_settings
        assert (used.max_examples, used.derandomize) == (EXAMPLES, True), name
        _count(name.removeprefix("test_").removesuffix("_parser"))
