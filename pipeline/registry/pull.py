"""Pulling one platform's image manifest, from an index or from an image whose config names it."""

from __future__ import annotations

from pipeline.errors import RegistryError
from pipeline.oci.descriptor import Descriptor, Platform
from pipeline.oci.manifest import Index, Manifest, parse
from pipeline.registry.blobs import Blobs
from pipeline.registry.manifests import Manifests
from pipeline.registry.reference import Reference


class Pulls(Blobs, Manifests):
    """Picking and reading a platform's image."""

    def pull_platform(self, ref: Reference, platform: Platform) -> tuple[Manifest, Descriptor]:
        """The image manifest of ``ref`` for ``platform`` (picked from an index when ref names one)."""
        data, desc = self.get_manifest(ref)
        item = parse(data, desc.media_type)
        if isinstance(item, Index):
            candidates = [
                d for d in item.manifests if d.platform is not None and platform.matches(d.platform)
            ]
            if not candidates:
                offered = sorted({str(d.platform) for d in item.manifests if d.platform is not None})
                raise RegistryError(
                    f"{ref} has no image for {platform}",
                    hint=f"it offers: {', '.join(offered) or 'no platforms'}",
                )
            chosen = candidates[0]
            data, child = self.get_manifest(ref.with_digest(chosen.digest))
            item = parse(data, child.media_type)
            if not isinstance(item, Manifest):
                raise RegistryError(f"{ref} for {platform} is a nested index, not an image manifest")
            return item, Descriptor(
                child.media_type,
                child.digest,
                child.size,
                chosen.annotations,
                chosen.platform,
                item.artifact_type,
            )
        config = self.get_blob(ref, item.config.digest)
        try:
            import json

            found = Platform.from_dict(json.loads(config))
        except (ValueError, AttributeError):
            raise RegistryError(f"{ref}: the image config is not JSON") from None
        if not platform.matches(found):
            raise RegistryError(f"{ref} is an image for {found}, not {platform}")
        return item, Descriptor(desc.media_type, desc.digest, desc.size, platform=found)
