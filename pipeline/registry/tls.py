"""TLS verification for registry requests: which CA bundle, and the hosts ``--insecure`` names.

``--insecure`` turns verification off for the registry hosts it names and nothing else (a token realm
or a redirect target on another host is verified as usual). A private CA is trusted through a CA
bundle: ``--ca-file``, else ``REQUESTS_CA_BUNDLE`` or ``SSL_CERT_FILE`` as requests and OpenSSL read them.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from urllib.parse import urlsplit


def verification(url: str, insecure: Collection[str], ca_file: Path | None) -> bool | str:
    """requests' ``verify`` for ``url``: False only for a host named insecure, else the CA bundle."""
    if urlsplit(url).netloc.lower() in insecure:
        return False
    return str(ca_file) if ca_file is not None else True
