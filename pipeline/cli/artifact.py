"""``push`` and ``pull``: the release vector as an OCI artifact (metal-stack's format, reproducible)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from pipeline.artifact import MAX_VECTOR_BYTES, ArtifactAnnotations, parse_source_date_epoch
from pipeline.cli.app import app
from pipeline.cli.common import print_json, read_input_file, write_atomically
from pipeline.cli.option_groups import grouped
from pipeline.cli.registry_options import (
    REGISTRY_OPTIONS,
    SIGNATURE_REPOSITORY_OPTION,
    RegistryFlags,
    parse_signature_repository,
)
from pipeline.cli.trust_options import VERIFY_OPTIONS, verification_policy
from pipeline.cosign.policy import TrustOptions
from pipeline.errors import InvalidInputError, UsageError
from pipeline.oci.reference import parse_reference, parse_repository

if TYPE_CHECKING:  # the push and pull themselves (cryptography, the registry client) load when they run (start-up)
    from pipeline.cosign.verify import VerificationPolicy
    from pipeline.publish import PulledVector, PushResult

METADATA_KEY = "release-vector"
SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"


@dataclass(frozen=True)
class VectorMetadata:
    """The vector's ``release-vector:`` block, as far as push needs it."""

    version: str | None
    revision: str | None


def _text_field(block: dict[Any, Any], key: str, where: str) -> str | None:
    value = block.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{METADATA_KEY}.{key} must be a string, not {type(value).__name__}", where=where)
    return value


def read_vector_metadata(data: bytes, where: str) -> VectorMetadata:
    """``release-vector.version`` and ``.git-revision`` of a vector, if it has them (yaml.safe_load)."""
    import yaml

    try:
        document = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise InvalidInputError(f"release vector is not valid YAML: {problem}", where=f"{where}{line}") from None
    except RecursionError:  # yaml's composer recurses once per nesting level
        raise InvalidInputError("release vector is nested too deeply", where=where) from None
    if not isinstance(document, dict):
        raise InvalidInputError("release vector is not a YAML mapping", where=where)
    block = document.get(METADATA_KEY)
    if not isinstance(block, dict):
        return VectorMetadata(None, None)
    return VectorMetadata(_text_field(block, "version", where), _text_field(block, "git-revision", where))


def _print_push(result: PushResult, json_output: bool) -> None:
    if json_output:
        print_json(result.to_json())
        return
    for outcome in result.tags:
        print(f"{result.repository.tag(outcome.tag)}@{result.digest} {outcome.status}")


@app.command("push")
@grouped
def push_command(
    vector: Path = typer.Argument(
        ..., help="The release vector file (YAML), pushed byte for byte.", show_default=False
    ),
    repository: str = typer.Option(
        ...,
        "--repository",
        envvar="RELEASE_VECTOR_REPOSITORY",
        help="REGISTRY/REPO to push to, e.g. ghcr.io/metal-stack/releases.",
        show_default=False,
    ),
    tags: list[str] = typer.Option(
        [], "--tag", help="Tag to point at the artifact (repeatable); default: the vector's release-vector.version."
    ),
    force: bool = typer.Option(False, "--force", help="Move a version tag that points at a different artifact."),
    source_url: str | None = typer.Option(
        None,
        "--source-url",
        envvar="RELEASE_VECTOR_SOURCE_URL",
        help="The org.opencontainers.image.source annotation (the source repository URL).",
    ),
    registry: RegistryFlags = REGISTRY_OPTIONS,
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Push a release vector as an OCI artifact; as metal-stack's `oras push` does, but reproducibly.

    The same vector gives the same digest on any machine; SOURCE_DATE_EPOCH, if set, is the tar mtime and `created`.

    Tags already at that digest are not written again; a moved version tag is refused (exit 8) unless --force.
    """
    from pipeline.publish import push_vector

    repo = parse_repository(repository)
    content = read_input_file(vector, "release vector", limit=MAX_VECTOR_BYTES)
    metadata = read_vector_metadata(content, str(vector))
    wanted = _tags_to_push(tags, metadata, vector)
    epoch_text = os.environ.get(SOURCE_DATE_EPOCH)
    epoch = parse_source_date_epoch(epoch_text) if epoch_text else None
    annotations = ArtifactAnnotations.from_epoch(
        version=metadata.version, revision=metadata.revision, source=source_url or None, epoch=epoch
    )
    refs = [repo.tag(tag) for tag in wanted]
    with registry.client(refs) as client:
        result = push_vector(
            client,
            repo,
            wanted,
            content,
            annotations,
            force,
            mtime=epoch or 0,
            on_progress=lambda message: print(message, file=sys.stderr),
        )
    if not result.written:
        print(f"nothing to push: every tag already points at {result.digest}", file=sys.stderr)
    _print_push(result, json_output)


def _tags_to_push(tags: list[str], metadata: VectorMetadata, vector: Path) -> list[str]:
    """``--tag`` as given, else the vector's ``release-vector.version``."""
    wanted = list(tags) or ([metadata.version] if metadata.version else [])
    if not wanted:
        raise UsageError(
            f"no tag: the vector has no {METADATA_KEY}.version; give --tag",
            where=str(vector),
        )
    return wanted


def _write_output(path: Path, content: bytes) -> None:
    write_atomically(path, content, "output file")


def _pull_json(pulled: PulledVector, output: Path | None) -> dict[str, object]:
    verification = pulled.verification
    result: dict[str, object] = {
        "reference": str(pulled.reference),
        "digest": pulled.digest,
        "verified": verification is not None and verification.ok,
        "signatures": [
            {
                "signer": layer.signature.signer,
                "issuer": layer.signature.issuer,
                "integrated_time": layer.signature.integrated_time,
                "log_index": layer.signature.log_index,
                "checks": list(layer.signature.checks),
            }
            for layer in (verification.verified if verification is not None else ())
        ],
        "output": str(output) if output is not None else None,
        "size": len(pulled.content),
    }
    if output is None:
        result["vector"] = pulled.content.decode("utf-8", errors="replace")
    return result


@app.command("pull")
@grouped
def pull_command(
    ref: str = typer.Argument(..., help="The artifact: REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST.", show_default=False),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the release vector here (default: stdout).", show_default=False
    ),
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) that must have signed."),
    trust: TrustOptions = VERIFY_OPTIONS,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    json_output: bool = typer.Option(
        False, "--json", help="Print the result as JSON (with the vector if no --output)."
    ),
) -> None:
    """Pull a release vector and extract release.yaml; its signature is verified first if asked.

    With --key or the keyless --certificate-* options, nothing is written unless the artifact is signed (else exit
    10; 5 when its signatures could not be read).

    Without them the vector is pulled unverified (a warning says so).
    """
    from pipeline.publish import pull_vector

    image = parse_reference(ref)
    verify_options = (key, trust.certificate_identity, trust.certificate_identity_regexp, trust.certificate_oidc_issuer,
                      trust.certificate_oidc_issuer_regexp, trust.ca_roots, trust.ca_intermediates)  # fmt: skip
    policy: VerificationPolicy | None = None
    if any(option is not None for option in verify_options) or trust.insecure_ignore_tlog:
        policy = verification_policy(key, trust)
    else:
        print(
            "warning: pulling without signature verification (give --key, or --certificate-identity and "
            "--certificate-oidc-issuer, to verify)",
            file=sys.stderr,
        )
    signatures = parse_signature_repository(signature_repository)
    with registry.client([image], signatures) as client:
        pulled = pull_vector(client, image, policy, signatures=signatures)
    if pulled.verification is not None:
        count = len(pulled.verification.verified) + len(pulled.verification.bundles)
        print(f"verified: {pulled.pinned} ({count} valid signature{'s' if count != 1 else ''})", file=sys.stderr)
    if output is not None:
        _write_output(output, pulled.content)
        print(f"wrote {output} from {pulled.pinned}", file=sys.stderr)
    if json_output:
        print_json(_pull_json(pulled, output))
    elif output is None:
        _write_stdout(pulled.content)


def _write_stdout(content: bytes) -> None:
    """The vector's exact bytes on stdout (through the text layer only if there is no binary one)."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:
        sys.stdout.write(content.decode("utf-8", errors="replace"))
        return
    sys.stdout.flush()
    buffer.write(content)
    buffer.flush()
