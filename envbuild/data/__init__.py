"""Data references: hashing, tree digests, a content-addressed cache, remotes, DVC / Git LFS import.

Pure core: `tree` (canonical directory listings and their digests), `refs` (the typed `[data]`
table of envbuild.lock), `imports` parsing. Shell: `hashing`, `walk`, `statcache`, `cache`,
`remote`, `service` (what the `envbuild data ...` commands call).
"""

# How checkout writes a file out of the cache (here so the CLI can list them without importing).
LINKS = ("auto", "reflink", "hardlink", "copy")
