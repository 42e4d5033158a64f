"""The provenance options: ``release --attest provenance`` and ``verify-release --require-provenance``."""

from __future__ import annotations

import getpass
import os
import re
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

import typer

from pipeline.cli.option_groups import option_group
from pipeline.errors import UsageError

if TYPE_CHECKING:  # the provenance module (the vector's YAML) loads when a release runs, not for --help (start-up)
    from pipeline.provenance import BuildEnvironment, ProvenanceExpectations

ATTEST_OPTION = typer.Option(
    None,
    "--attest",
    envvar="RELEASE_VECTOR_ATTEST",
    help="provenance: after signing, attest SLSA Provenance v1 on the vector artifact (signed by the release's "
    "signers, in its bundle format(s)).",
)


def build_environment(attest: str | None) -> BuildEnvironment | None:
    """``--attest``: None (no provenance) or the build environment, from GitHub Actions' variables when
    running there (builder id = the workflow identity), else this host and user (a local build)."""
    if attest is None or attest.strip() == "":
        return None
    if attest.strip() != "provenance":
        raise UsageError(f"--attest {attest!r} is not supported (provenance)")
    from pipeline.provenance import BuildEnvironment

    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return BuildEnvironment.from_environment(os.environ, user=user, host=socket.gethostname())


@dataclass(frozen=True)
class ProvenanceCheckOptions:
    require_provenance: bool
    builder_id: str | None
    builder_id_regexp: str | None
    source_repository: str | None
    source_ref: str | None

    def expectations(self) -> ProvenanceExpectations | None:
        given = [self.builder_id, self.builder_id_regexp, self.source_repository, self.source_ref]
        if not self.require_provenance:
            if any(value is not None for value in given):
                raise UsageError("--builder-id, --builder-id-regexp, --source-repository and --source-ref need "
                                 "--require-provenance")  # fmt: skip
            return None
        if self.builder_id is not None and self.builder_id_regexp is not None:
            raise UsageError("give --builder-id or --builder-id-regexp, not both")
        if self.builder_id_regexp is not None:
            try:
                re.compile(self.builder_id_regexp)
            except re.error as error:
                raise UsageError(f"--builder-id-regexp is not a regular expression: {error}") from None
        from pipeline.provenance import ProvenanceExpectations

        return ProvenanceExpectations(self.builder_id, self.builder_id_regexp, self.source_repository,
                                      self.source_ref)  # fmt: skip


PROVENANCE_OPTIONS = option_group(
    ProvenanceCheckOptions,
    require_provenance=(bool, typer.Option(
        False, "--require-provenance", envvar="RELEASE_VECTOR_REQUIRE_PROVENANCE",
        help="The vector's SLSA provenance must exist, verify with the same trust, and name exactly its pins.")),
    builder_id=(str | None, typer.Option(None, "--builder-id", help="The provenance's builder id, exactly.")),
    builder_id_regexp=(str | None, typer.Option(
        None, "--builder-id-regexp", help="A regular expression the builder id must match (searched).")),
    source_repository=(str | None, typer.Option(
        None, "--source-repository", help="OWNER/REPO the provenance's workflow ran in.")),
    source_ref=(str | None, typer.Option(None, "--source-ref", help="The git ref it ran for (refs/tags/v1.2.3).")),
)  # fmt: skip
