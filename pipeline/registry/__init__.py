"""Talking to OCI registries: references, credentials, auth, transport, the client, referrers.

The client speaks the OCI distribution API over ``requests``, modelled on go-containerregistry's
``remote``/``transport`` packages and regclient. Below it: ``transport`` (auth, redirects, TLS),
``retry`` (backoff, Retry-After, deadline) and ``body`` (replayable request bodies). The client
itself is ``api`` (its core) plus one module per part of the protocol: ``manifests``, ``blobs``,
``upload``, ``push``, ``pull``, ``tags``; ``client.Client`` puts them together.
"""
