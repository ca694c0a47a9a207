"""A CycloneDX SBOM of an image, from the lock alone. Pure.

Components are the wheels the image installs for one platform (name, version, purl, the
wheel's sha256 and URL), so the SBOM's hashes are the lock's. Fields that would change from
run to run are fixed: the serial number is derived from the bundle id and platform, and the
timestamp is the Unix epoch (the lock has no time; a real one would break "same lock, same
bytes").
"""

from __future__ import annotations

import json
import uuid
import warnings
from datetime import UTC, datetime

from envbuild.generate.dockerfile import image_wheels
from envbuild.lock.loaded import Bundle

# A fixed namespace for uuid5: serial numbers are stable names, not random ids.
_SERIAL_NAMESPACE = uuid.UUID("6f1c7c8e-5d0b-4f4a-9c39-2b7f4f0f7e11")


def render_sbom(bundle: Bundle, platform: str) -> bytes:
    from cyclonedx.model import (
        ExternalReference,
        ExternalReferenceType,
        HashAlgorithm,
        HashType,
        XsUri,
    )
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    lock = bundle.lock
    bom = Bom()
    bom.serial_number = uuid.uuid5(_SERIAL_NAMESPACE, f"{lock.bundle_id} {platform}")
    bom.metadata.timestamp = datetime(1970, 1, 1, tzinfo=UTC)
    root = Component(
        name=lock.image.name, version=lock.short_id, type=ComponentType.CONTAINER,
        bom_ref=f"envbuild:{lock.name}@{lock.bundle_id}",
        description=f"envbuild bundle {lock.bundle_id} for {platform}",
    )
    bom.metadata.component = root
    components = []
    for pkg, wheel in image_wheels(bundle, platform):
        purl = PackageURL(type="pypi", name=pkg.name, version=pkg.version,
                          qualifiers={"file_name": wheel.name})
        components.append(Component(
            name=pkg.name, version=pkg.version, type=ComponentType.LIBRARY, purl=purl,
            bom_ref=f"pkg:pypi/{pkg.name}@{pkg.version}",
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=wheel.sha256)],
            external_references=[ExternalReference(type=ExternalReferenceType.DISTRIBUTION,
                                                   url=XsUri(wheel.url))],
        ))
    for component in components:
        bom.components.add(component)
    bom.register_dependency(root, components)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text = JsonV1Dot6(bom).output_as_string()
    # Re-dump with sorted keys and a fixed layout: the library's field order is its own.
    data = json.loads(text)
    return (json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
