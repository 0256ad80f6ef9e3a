"""Deployment tooling: the Dockerfile model, the CI base image, the container check.

`dockerfile` reads deploy/Dockerfile (with Docker's own parser), `base_image`
bootstraps a Debian bookworm Python base with mmdebstrap, `podman` drives the
Podman CLI, `certificates` finds host-only CAs in an image's layers, and
`check_container` builds and runs the real image. Run the check as
`python -m deploy.check_container`. None of this ships in the image.
"""
