"""Signing with Sigstore: cosign-compatible payloads, bundles, verification and trust configs.

The ``sigstore`` package signs and verifies; this package builds what cosign signs for an image
(statement, simple-signing payload), checks identities and trust roots (a trust config is "local" when
its services live on loopback; a release's :class:`~pipeline.signing.trust.Trust` is its identity and the
trust configs it checks them with, loaded once), and refuses to sign with a local instance for a registry off loopback.
Attaching signatures in a registry is in :mod:`pipeline.signing.attach`; the local Sigstore instance
itself is started by :mod:`pipeline.services.localsigstore`.
"""
