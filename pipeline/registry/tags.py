"""Tags: ``/v2/<name>/tags/list``, every page of it (``Link: rel="next"``, on the registry's origin)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

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

    The next page must be on the registry's own origin: the request for it carries the registry's
    Authorization header, which never goes to another host.
    """
    link = response.links.get("next")
    if not link or not link.get("url"):
        return None
    url = urljoin(response.url, link["url"])
    here, there = urlsplit(response.url), urlsplit(url)
    if (here.scheme, here.netloc) != (there.scheme, there.netloc):
        raise RegistryError(
            f"the registry's next page is on another origin ({there.scheme}://{there.netloc})",
            hint="a registry pages its lists on its own host; this answer is not trusted",
        )
    return url
