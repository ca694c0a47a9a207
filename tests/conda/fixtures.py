"""The packages of the tests' local channel, and a static HTTP server for it on 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conda.channel import PLATFORMS, Pkg

# tinylib: one build per platform (.conda); tinytool: noarch (.tar.bz2) needing tinylib;
# onlyx86: built for linux-64 alone (a package missing on one platform).
PACKAGES = [
    *(Pkg(name="tinylib", version="1.0", subdir=p, files={"lib/tinylib.txt": f"tinylib {p}\n"})
      for p in PLATFORMS),
    Pkg(name="tinytool", version="2.1", subdir="noarch", depends=("tinylib >=1.0",),
        files={"share/tinytool/README": "tinytool 2.1\n"}, fmt=".tar.bz2"),
    Pkg(name="onlyx86", version="0.1", subdir="linux-64", files={"share/onlyx86": "x86\n"}),
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` on 127.0.0.1 (a free port); yield its base URL."""
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
