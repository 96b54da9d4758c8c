"""The release's check of a registry, alone in a process (for its time and peak memory):
``python -m tests.support.release_check PREFIX VERSION TRUST_CONFIG IDENTITY ISSUER``.

The release it checks for is tag ``vVERSION`` of an unnamed commit (an index without a revision
annotation binds to any).

It runs what `invoke release` runs before deciding (``pipeline.release.state.inspect_registry``) for
the executor variant under PREFIX, signed by IDENTITY/ISSUER under TRUST_CONFIG, and prints the
variant's state as one JSON object.
"""

from __future__ import annotations

import json
import sys

from pipeline.policy import tagplan
from pipeline.registry.client import Client
from pipeline.registry.credentials import Credentials
from pipeline.release.binding import SignatureChecks, Subject
from pipeline.release.signer import Signing
from pipeline.release.state import inspect_registry
from pipeline.signing import trust


def main(argv: list[str]) -> int:
    prefix, version, trust_config, identity, issuer = argv
    plans = tagplan.plan(version, prefix, ["executor"])
    signing = Signing(False, identity, issuer, trust_config)
    trusted = trust.Trust.of(signing.policy, [trust_config])
    with Client(credentials=Credentials.anonymous()) as client:
        subject = Subject(version, f"v{version}", "0" * 40)
        states = inspect_registry(SignatureChecks(client, trusted), plans, subject)
    sys.stdout.write(json.dumps(states["executor"].to_dict(), sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
