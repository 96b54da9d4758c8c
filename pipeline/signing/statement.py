"""What cosign signs for an image: the v3 in-toto statement and the v2 simple-signing payload.

- cosign v3 (specs/BUNDLE_SPEC.md): an in-toto Statement v1 whose subject is the signed digest, with
  predicateType ``https://sigstore.dev/cosign/sign/v1`` and an empty predicate, signed as DSSE.
- cosign v2 (specs/SIGNATURE_SPEC.md): the "simple signing" JSON naming the image's repository and
  manifest digest, signed as a plain message and stored under the ``sha256-<hex>.sig`` tag.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pipeline.errors import VerifyError
from pipeline.oci import digests

IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
# cosign attest writes v0.1 statements; both are read.
IN_TOTO_STATEMENT_TYPES = (IN_TOTO_STATEMENT_V1, "https://in-toto.io/Statement/v0.1")
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
SIMPLE_SIGNING_TYPE = "cosign container image signature"
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"


def _sha256_hex(digest: str) -> str:
    digests.validate(digest)
    algorithm, _, hex_ = digest.partition(":")
    if algorithm != "sha256":
        raise VerifyError(f"only sha256 digests can be signed, not {digest}")
    return hex_


def in_toto_statement(digest: str, name: str, predicate_type: str, predicate: dict[str, Any]) -> bytes:
    """An in-toto Statement v1 about ``digest`` (``name``: the repository, or ""), compact JSON with
    sorted predicate keys: the same predicate always gives the same bytes."""
    statement = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": _sha256_hex(digest)}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(statement, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def cosign_statement(digest: str, name: str = "") -> bytes:
    """The cosign v3 in-toto statement for ``digest`` (``name``: the repository, or "")."""
    return in_toto_statement(digest, name, COSIGN_SIGN_PREDICATE, {})


def predicate_type_of(payload: bytes) -> str | None:
    """The predicateType an (unverified) in-toto payload claims: only to pick what to verify."""
    try:
        data: Any = json.loads(payload)
    except ValueError:
        return None
    found = data.get("predicateType") if isinstance(data, dict) else None
    return found if isinstance(found, str) else None


def simple_signing_payload(repository: str, digest: str) -> bytes:
    """The cosign v2 simple-signing payload, with cosign's field order and no white space."""
    _sha256_hex(digest)
    payload = {
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest},
            "type": SIMPLE_SIGNING_TYPE,
        },
        "optional": None,
    }
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class StatementCheck:
    """What a verified statement says, or why it does not sign the digest."""

    names: tuple[str, ...]
    reason: str | None
    statement: dict[str, Any] | None = None  # the decoded statement, when it names the digest


def check_statement(
    payload_type: str, payload: bytes, digest: str, predicate_type: str = COSIGN_SIGN_PREDICATE
) -> StatementCheck:
    """Whether a verified DSSE payload is an in-toto statement of ``predicate_type`` (by default a
    cosign signature) naming ``digest``; the predicate type must match exactly, as cosign requires."""
    hex_ = _sha256_hex(digest)
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        return StatementCheck((), f"the envelope's payload type is {payload_type!r}, not in-toto")
    try:
        statement: Any = json.loads(payload)
    except ValueError:
        return StatementCheck((), "the signed payload is not JSON")
    if not isinstance(statement, dict) or statement.get("_type") not in IN_TOTO_STATEMENT_TYPES:
        return StatementCheck((), "the signed payload is not an in-toto Statement")
    if statement.get("predicateType") != predicate_type:
        wanted = "a signature" if predicate_type == COSIGN_SIGN_PREDICATE else repr(predicate_type)
        return StatementCheck(
            (), f"the statement's predicateType is {statement.get('predicateType')!r}, not {wanted}"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        return StatementCheck((), "the statement has no subject list")
    names = tuple(str(s.get("name", "")) for s in subjects if isinstance(s, dict))
    for subject in subjects:
        digest_set = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digest_set, dict) and digest_set.get("sha256") == hex_:
            return StatementCheck(names, None, statement)
    found = [
        f"sha256:{s['digest'].get('sha256')}"
        for s in subjects
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    ]
    return StatementCheck(names, f"the statement signs {', '.join(found) or 'nothing'}, not {digest}")


def check_simple_signing(payload: bytes, digest: str) -> str | None:
    """None when ``payload`` is a simple-signing payload for ``digest``, else why not."""
    try:
        data: Any = json.loads(payload)
        critical = data["critical"]
        signed = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
    except (ValueError, KeyError, TypeError):
        return "the payload is not a cosign simple-signing payload"
    if kind != SIMPLE_SIGNING_TYPE:
        return f"the payload's type is {kind!r}, not {SIMPLE_SIGNING_TYPE!r}"
    if signed != digest:
        return f"the payload signs {signed}, not {digest}"
    return None
