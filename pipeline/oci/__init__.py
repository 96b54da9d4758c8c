"""OCI primitives shared by the image builder and the registry client.

Named after the OCI image spec: digest, media type, descriptor, manifest, index and image layout.
"""
