"""Release targets: where a release is published, behind one narrow interface.

Two targets implement :class:`ReleaseTarget`:

- :class:`~pipeline.targets.github.GitHubTarget` — the releases of a GitHub (or GitHub Enterprise)
  repository, through the documented REST API: draft first, assets uploaded to the release's
  ``upload_url``, then published (immutable releases take no asset once published).
- :class:`~pipeline.targets.release_dir.ReleaseDirTarget` — ``DIR/VERSION/`` on disk (``--release-dir``,
  rehearsals, air-gapped sites), with the same draft-then-publish semantics and a ``release.json`` record.

How a caller composes it (the CLI is the composition root; the core never reads the environment)::

    from pipeline.secret import Secret
    from pipeline.targets import GitHubOptions, GitHubTarget, ReleaseDirTarget, WantedAsset
    from pipeline.targets import diff_release, sync_release

    # CLI: --github-repository/GITHUB_REPOSITORY, --github-api-url/GITHUB_API_URL, GITHUB_TOKEN (env only)
    with GitHubTarget("owner/repo", Secret(token), GitHubOptions(api_url=api_url)) as target:
        wanted = [
            WantedAsset("cosign.pub", public_key_pem, "application/x-pem-file"),
            WantedAsset("release.yaml", vector_bytes, "application/yaml"),
        ]
        # plan (read-only, also for --dry-run):
        diff = diff_release(target.observe("v1.2.3"), wanted)
        # diff.create_draft, diff.upload (names), diff.compare (names), diff.publish, diff.conflicts
        # apply (idempotent; a re-run after a failure completes the draft):
        sync_release(target, "v1.2.3", wanted, target_commitish=sha, name="v1.2.3", body=notes)

    ReleaseDirTarget(Path(release_dir))      # the same calls, on DIR/VERSION/

    # verify-release: the published key
    published_key = target.read_asset("v1.2.3", "cosign.pub")   # bytes, or None if not published
    fetched = target.fetch_asset("v1.2.3", "release.yaml", max_bytes=10 << 20)  # size-capped, says why not

An apply step that runs plan actions one by one uses the primitives instead: ``ensure_draft`` →
``upload_asset`` per asset (True: written, False: same content already there) → ``publish``.
Failures are :class:`~pipeline.errors.ConflictError` (exit 8: different content, published release
without our assets), :class:`~pipeline.errors.AuthError` (exit 4: 401/403) and
:class:`~pipeline.errors.GitHubError` (exit 7), one line each, naming a URL or path, never the token.
"""

from __future__ import annotations

from pipeline.targets.base import (
    STARTER,
    UPLOADED,
    AssetConflict,
    AssetState,
    FetchedAsset,
    ReleaseDiff,
    ReleaseHandle,
    ReleaseState,
    ReleaseTarget,
    WantedAsset,
    check_asset_name,
    check_version,
    diff_release,
    sync_release,
)
from pipeline.targets.github import DEFAULT_API_URL, GitHubOptions, GitHubTarget, parse_repository
from pipeline.targets.release_dir import ReleaseDirTarget

__all__ = [
    "DEFAULT_API_URL",
    "STARTER",
    "UPLOADED",
    "AssetConflict",
    "AssetState",
    "FetchedAsset",
    "GitHubOptions",
    "GitHubTarget",
    "ReleaseDiff",
    "ReleaseDirTarget",
    "ReleaseHandle",
    "ReleaseState",
    "ReleaseTarget",
    "WantedAsset",
    "check_asset_name",
    "check_version",
    "diff_release",
    "parse_repository",
    "sync_release",
]
