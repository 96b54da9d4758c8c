"""The referrer manifest of a Sigstore bundle (pipeline/signing/attach.py) is made of the bundle alone: its
created annotation is the bundle's earliest log time, so the same bundle is the same referrer whenever it
is attached (on main it was the wall clock's second: two referrers of one bundle a second apart)."""

from __future__ import annotations

import json
import time

from pipeline.oci import mediatype
from pipeline.oci.descriptor import Descriptor
from pipeline.registry.referrers import CREATED
from pipeline.signing import attach

SUBJECT = Descriptor(mediatype.OCI_INDEX, "sha256:" + "a" * 64, 321)


def _bundle(*logged: object) -> bytes:
    entries = [{"logIndex": "7", "integratedTime": when} for when in logged]
    return json.dumps({"verificationMaterial": {"tlogEntries": entries}, "dsseEnvelope": {}}).encode()


def test_the_created_annotation_is_the_bundles_earliest_log_time_not_the_clock() -> None:
    bundle = _bundle("1700000000", "1700000005")  # as the bundle's JSON writes int64: a string
    first = attach.bundle_artifact(SUBJECT, bundle)
    time.sleep(1.1)
    again = attach.bundle_artifact(SUBJECT, bundle)
    assert first.annotations[CREATED] == "2023-11-14T22:13:20Z"
    assert again.to_bytes() == first.to_bytes()


def test_a_bundle_that_names_no_log_time_gets_no_created_annotation() -> None:
    for data in (_bundle(), b"{}", b"not json", _bundle("soon"), _bundle(10**30), b"[]"):
        assert attach.bundle_created(data) is None, data
        assert CREATED not in attach.bundle_artifact(SUBJECT, data).annotations
