"""Which CA certificates an image's layers carry that the host alone trusts.

A build behind a TLS-inspecting proxy needs the proxy's CA; it must reach the
download steps only (a build secret) and never a layer. The host's trust
store is the distribution's bundle plus such local CAs, so the certificates
to look for are the host's minus those an image ships on purpose (the base
image's bundle, certifi's). Every layer of the saved image is read, not just
the final filesystem: a file deleted in a later layer is still shipped.
"""

from __future__ import annotations

import re
import ssl
import tarfile
import tempfile
from pathlib import Path

import certifi

from deploy.podman import Podman

__all__ = ["certificates", "foreign_certificates", "image_files_containing", "read_certifi_bundle"]

PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s+.*?-----END CERTIFICATE-----", re.DOTALL
)


def certificates(pem: str) -> set[bytes]:
    """The DER encodings of the PEM certificates in `pem`."""
    return {ssl.PEM_cert_to_DER_cert(block) for block in PEM_CERTIFICATE.findall(pem)}


def foreign_certificates(host_bundle: str, *shipped_bundles: str) -> set[bytes]:
    """Certificates the host trusts that none of the bundles an image ships on purpose has."""
    shipped: set[bytes] = set()
    for bundle in shipped_bundles:
        shipped |= certificates(bundle)
    return certificates(host_bundle) - shipped


def needles(certificate: bytes) -> list[bytes]:
    """Byte strings that betray `certificate` in a file: its DER and its PEM body."""
    pem_body = ssl.DER_cert_to_PEM_cert(certificate).strip().splitlines()[1:-1]
    return [certificate, "\n".join(pem_body).encode()]


def image_files_containing(podman: Podman, image: str, found: set[bytes]) -> list[str]:
    """Paths in any layer of `image` whose bytes betray one of the `found` certificates."""
    patterns = [needle for certificate in found for needle in needles(certificate)]
    hits: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rtp-image-") as folder:
        archive = Path(folder) / "image.tar"
        podman.run("save", "--format=docker-archive", f"--output={archive}", image, timeout=300)
        with tarfile.open(archive) as outer:
            for member in outer:
                is_layer = member.isfile() and member.name.endswith(".tar")
                layer = outer.extractfile(member) if is_layer else None
                if layer is None:
                    continue
                with tarfile.open(fileobj=layer, mode="r|") as files:
                    for entry in files:
                        content = files.extractfile(entry) if entry.isfile() else None
                        data = content.read() if content is not None else b""
                        if any(pattern in data for pattern in patterns):
                            hits.append(f"{member.name}:{entry.name}")
    return hits


def read_certifi_bundle() -> str:
    """certifi's bundle: the locked version, which the image's venv also has."""
    return Path(certifi.where()).read_text(encoding="utf-8")
