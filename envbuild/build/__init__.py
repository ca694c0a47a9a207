"""Builders (buildah, podman, docker), the wheel cache, build records, and image diffs."""
