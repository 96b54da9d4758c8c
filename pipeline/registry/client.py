"""The registry client: manifests and blobs over the OCI distribution API, push and pull.

``Client`` is the parts of the protocol put together, each in its module over the core
(``api.RegistryAPI``: transport, URLs, requests, error answers):

- ``manifests``: find, get, head and put manifests;
- ``blobs``: check for, get and download blobs;
- ``upload``: upload blobs (mount, monolithic, chunked);
- ``push``: push an OCI layout (blobs, manifests by digest, tags last);
- ``pull``: pull one platform's image;
- ``tags``: list tags.

Referrers (``referrers``) are functions over a ``Client`` that use only its public methods.
"""

from __future__ import annotations

from pipeline.registry.pull import Pulls
from pipeline.registry.push import Pushes, PushResult
from pipeline.registry.tags import Tags

__all__ = ["Client", "PushResult"]


class Client(Pushes, Pulls, Tags):
    """A registry client (thread safe; one per run, shared by the stages)."""
