"""Talking to OCI registries: references, credentials, auth, transport, client, referrers, tag plan."""
