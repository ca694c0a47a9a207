"""Lock model (pylock.toml, envbuild.lock), resolver backends and canonical hashing."""

RESOLVERS = ("uv", "pip-tools")
