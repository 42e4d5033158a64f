"""release-vector: cut signed, cosign-compatible releases described by a release vector."""

import sys

__version__ = "0.1.0"

# httpx imports its own command-line tool (click, rich, pygments: about a tenth of a second) whenever those
# are installed, and this package never runs it: a None entry makes that one import fail, which httpx
# expects (its `httpx` command then says to install httpx[cli]). Start-up time of every networked command.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
