"""Conformance: prove each published executor variant on real builds, checked against buildah.

cases (the suite and case.json), bases (offline stand-in base images), builders (kaniko in podman with
the README's profile; buildah), snapshot and compare (what an image holds; the differences), checks (a
case's own expectations), matrix (the capabilities a case needs beyond the profile), variants (debug,
warmer, credential helpers), run (the cases), stage (the entry point), result (the typed result).
"""
