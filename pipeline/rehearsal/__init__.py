"""The rehearsal: the whole release on embedded local targets, and the servers it runs against.

Nothing here is used by a real release; it sits above the core (it drives the release) and below the CLI.
No module under ``pipeline/`` other than ``pipeline.cli`` imports from here.

- :mod:`.targets`: the local registry process, synthetic images, throwaway keys, the work folder.
- :mod:`.run`: the rehearsal itself, :func:`~pipeline.rehearsal.run.rehearse` (settings in, a result out).
- :mod:`.log_server`: a transparency log speaking Rekor v1's HTTP API.
- :mod:`.fulcio_server`, :mod:`.oidc_issuer`: a Fulcio stand-in and an OIDC issuer (keyless rehearsals).
- :mod:`.standin_http`: the loopback HTTP server the three stand-ins share.

Trust these servers nowhere but on this machine: their keys live in memory and die with them.
"""
