"""Signing with Sigstore: cosign-compatible payloads, bundles, verification, a local Sigstore instance.

The ``sigstore`` package signs and verifies; this package builds what cosign signs for an image
(statement, simple-signing payload), checks identities and trust roots, and runs the local instance.
Attaching signatures in a registry is in :mod:`pipeline.signing.attach`.
"""
