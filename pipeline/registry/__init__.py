"""Talking to OCI registries: references, credentials, auth, transport, client, referrers, tag plan.

The client speaks the OCI distribution API over ``requests``, modelled on go-containerregistry's
``remote``/``transport`` packages and regclient.
"""
