"""Tags: ``/v2/<name>/tags/list``, every page of it (``Link: rel="next"``)."""

from __future__ import annotations

from urllib.parse import urljoin

import requests

from pipeline.errors import RegistryError
from pipeline.registry.api import RegistryAPI
from pipeline.registry.reference import Reference


class Tags(RegistryAPI):
    """Listing a repository's tags."""

    def list_tags(self, ref: Reference) -> list[str]:
        what = f"list tags of {ref.repo_str}"
        url: str | None = self.url(ref, "tags/list?n=1000")
        tags: list[str] = []
        pages = 0
        while url and pages < 1000:
            pages += 1
            response = self.request("GET", ref, url, what=what)
            with response:
                if response.status_code == 404:
                    return tags
                if response.status_code != 200:
                    raise self.error(what, response)
                try:
                    body = response.json()
                except ValueError:
                    raise RegistryError(f"{what}: the registry did not answer JSON") from None
                tags.extend(str(tag) for tag in (body.get("tags") or []))
                url = next_link(response)
        return tags


def next_link(response: requests.Response) -> str | None:
    """The ``Link: <...>; rel="next"`` page of a paged answer (tags, referrers), or None.

    A next page on another origin is followed like any URL the registry names: without the
    registry's Authorization header, and never over plain HTTP for a registry with TLS (the transport
    sees to both, see ``origin``).
    """
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    return urljoin(response.url, link["url"])
