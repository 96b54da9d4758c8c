"""Issue 15 item 9: the referrers API, paged, against a registry that implements it.

tests/support/referrersapi.py puts the OCI referrers API (OCI-Subject on PUT, GET .../referrers/<digest>
paged with Link) in front of the real distribution registry, two descriptors a page. Attaching must
use the API (no referrers tag schema fallback tag), and listing must read every page.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.registry.reference import Reference
from pipeline.registry.referrers import attach, fallback_tag, list_referrers
from pipeline.services.distribution import LocalRegistry
from tests.support.layouts import BUNDLE, build_image, bundle_artifact
from tests.support.referrersapi import ReferrersApi

OTHER = "application/vnd.example.sbom+json"


@pytest.fixture
def api(registry: LocalRegistry) -> Iterator[ReferrersApi]:
    server = ReferrersApi(registry.url, page_size=2).start()
    yield server
    server.stop()


def test_attach_and_list_through_a_paged_referrers_api(
    api: ReferrersApi, registry: LocalRegistry, tmp_path: Path
) -> None:
    layout, top = build_image(tmp_path / "layout")
    client = Client(credentials=Credentials.anonymous())
    ref = Reference.parse(f"{api.host}/team/app:v1")
    client.push_layout(layout, top, ref)
    attached = []
    for i in range(5):
        kind = BUNDLE if i % 2 == 0 else OTHER
        attached.append(attach(client, ref, bundle_artifact(client, ref, top, b'{"n": %d}' % i, kind)))
    # The registry indexed each one itself: no referrers-tag-schema index was written.
    tags = requests.get(f"{registry.url}/v2/team/app/tags/list", timeout=10).json()["tags"]
    assert fallback_tag(top.digest) not in tags
    assert len(api.referrers[("team/app", top.digest)]) == 5

    api.pages_served = 0
    listed = list_referrers(client, ref, top.digest)
    assert [d.digest for d in listed] == [d.digest for d in attached]  # all 5, in order, over 3 pages
    assert api.pages_served == 3
    bundles = list_referrers(client, ref, top.digest, artifact_type=BUNDLE)
    assert [d.digest for d in bundles] == [attached[0].digest, attached[2].digest, attached[4].digest]
    assert all(d.artifact_type == BUNDLE for d in bundles)
