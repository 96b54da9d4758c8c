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
from pipeline.oci import digest as digests

IN_TOTO_STATEMENT_V1 = "https://in-toto.io/Statement/v1"
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


def cosign_statement(digest: str, name: str = "") -> bytes:
    """The cosign v3 in-toto statement for ``digest`` (``name``: the repository, or "")."""
    statement = {
        "_type": IN_TOTO_STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": _sha256_hex(digest)}}],
        "predicateType": COSIGN_SIGN_PREDICATE,
        "predicate": {},
    }
    return json.dumps(statement, separators=(",", ":")).encode("utf-8")


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


def check_statement(payload_type: str, payload: bytes, digest: str) -> StatementCheck:
    """Whether a verified DSSE payload is a cosign signature statement naming ``digest``."""
    hex_ = _sha256_hex(digest)
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        return StatementCheck((), f"the envelope's payload type is {payload_type!r}, not in-toto")
    try:
        statement: Any = json.loads(payload)
    except ValueError:
        return StatementCheck((), "the signed payload is not JSON")
    if not isinstance(statement, dict) or statement.get("_type") != IN_TOTO_STATEMENT_V1:
        return StatementCheck((), "the signed payload is not an in-toto Statement v1")
    if statement.get("predicateType") != COSIGN_SIGN_PREDICATE:
        return StatementCheck(
            (), f"the statement's predicateType is {statement.get('predicateType')!r}, not a signature"
        )
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        return StatementCheck((), "the statement has no subject list")
    names = tuple(str(s.get("name", "")) for s in subjects if isinstance(s, dict))
    for subject in subjects:
        digest_set = subject.get("digest") if isinstance(subject, dict) else None
        if isinstance(digest_set, dict) and digest_set.get("sha256") == hex_:
            return StatementCheck(names, None)
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
