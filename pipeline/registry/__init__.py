"""The registry client: references, credentials, auth, transport, push, pull and referrers.

It speaks the OCI distribution API over ``requests``, modelled on go-containerregistry's
``remote``/``transport`` packages and regclient.
"""
