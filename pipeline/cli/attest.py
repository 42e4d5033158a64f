"""``attest`` and ``verify-attestation``: in-toto attestations on images, as ``cosign attest`` and
``cosign verify-attestation`` (legacy ``.att`` tag and/or Sigstore bundle referrers, ``--bundle-format``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline import jsonbounded
from pipeline.cli.app import app
from pipeline.cli.bundle_options import BUNDLE_FORMAT_OPTION, parse_bundle_format, referrer_created
from pipeline.cli.common import load_signing_key, one_line, print_json, read_input_file
from pipeline.cli.images import IMAGES_ARGUMENT, report_signing
from pipeline.cli.keyless_options import SIGN_OPTIONS, KeylessOptions, check_keyless_options, keyless_signer
from pipeline.cli.keys import KEY_HELP
from pipeline.cli.option_groups import grouped
from pipeline.cli.registry_options import (
    ANNOTATION_OPTION,
    CONCURRENCY_OPTION,
    REGISTRY_OPTIONS,
    SIGNATURE_REPOSITORY_OPTION,
    RegistryFlags,
    parse_annotations,
    parse_images,
    parse_signature_repository,
)
from pipeline.cli.signing_config_options import date_log_entries, timestamp_client, with_signing_config
from pipeline.cli.trust_options import TLOG_OPTIONS, VERIFY_OPTIONS, TlogOptions, transparency_log, verification_policy
from pipeline.cosign.policy import TrustOptions
from pipeline.errors import ExitCode

if TYPE_CHECKING:  # the attestations' core (cryptography, the registry client) loads when a command runs (start-up)
    from pipeline.signatures.attest import AttestationCheck
    from pipeline.sigstore.statement_policy import StatementPolicy

TYPE_HELP = (
    "Predicate type: slsaprovenance, slsaprovenance02, slsaprovenance1, spdx, spdxjson, cyclonedx, link, vuln, "
    "openvex, custom (cosign's short names), or a URI."
)
TYPE_OPTION = typer.Option("custom", "--type", help=TYPE_HELP)


def read_predicate(path: Path) -> dict[str, object]:
    """The predicate file, bounded and checked (a JSON object of at most 16 MiB), before anything is written."""
    from pipeline.sigstore.intoto import PREDICATE_LIMIT, parse_predicate

    return dict(parse_predicate(read_input_file(path, "predicate file", limit=PREDICATE_LIMIT), str(path)))


@app.command("attest")
@grouped
def attest_command(
    images: list[str] = IMAGES_ARGUMENT,
    predicate: Path = typer.Option(..., "--predicate", help="The predicate: a JSON object (at most 16 MiB)."),
    predicate_type: str = TYPE_OPTION,
    key: str | None = typer.Option(None, "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP),
    keyless_options: KeylessOptions = SIGN_OPTIONS,
    annotations: list[str] = ANNOTATION_OPTION,
    recursive: bool = typer.Option(False, "--recursive", help="On an image index, attest each platform manifest too."),
    concurrency: int = CONCURRENCY_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    tlog_options: TlogOptions = TLOG_OPTIONS,
    bundle_format: str = BUNDLE_FORMAT_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON array of results."),
) -> None:
    """Attest images by digest, as `cosign attest` does; the same statement by the same signer is not written twice.

    The in-toto Statement v1 (subject: the repository and the manifest digest) is signed as a DSSE envelope and
    stored in the legacy sha256-<hex>.att tag (logged as an intoto entry) and/or, with --bundle-format v3 or both,
    as a Sigstore bundle referrer (logged as a dsse entry).
    """
    from pipeline.signatures.attest import attestation_layouts
    from pipeline.signatures.attestation import Attestation
    from pipeline.signatures.layout import WriteConfirmations
    from pipeline.signatures.sign import sign_images
    from pipeline.signatures.signers import signers_of
    from pipeline.sigstore.intoto import predicate_type_uri

    check_keyless_options(key, keyless_options, tlog_upload=tlog_options.tlog_upload)
    uri = predicate_type_uri(predicate_type)
    body = read_predicate(predicate)
    refs = parse_images(images)
    notes = parse_annotations(annotations)
    chosen = parse_bundle_format(bundle_format)
    signatures = parse_signature_repository(signature_repository)
    tlog_options, keyless_options = with_signing_config(tlog_options, keyless_options, timestamps=chosen)
    signing_key = load_signing_key(key) if key is not None else None
    with (
        transparency_log(tlog_options) as tlog,
        keyless_signer(keyless_options, tlog) as keyless,
        timestamp_client(tlog_options) as tsa,
        registry.client(refs, signatures) as client,
    ):
        date_log_entries(tlog, tsa)
        signers = signers_of(signing_key, keyless)
        confirmations = WriteConfirmations()
        layouts = attestation_layouts(chosen, client, Attestation(uri, body),
                                      created=referrer_created() if chosen != "legacy" else None,
                                      confirmations=confirmations, timestamps=tsa)  # fmt: skip
        outcomes = sign_images(client, refs, signers, layouts, log=tlog, annotations=notes, recursive=recursive,
                               concurrency=concurrency, confirmations=confirmations,
                               signatures=signatures)  # fmt: skip
    report_signing(outcomes, json_output)


def _check_json(check: AttestationCheck) -> dict[str, object]:
    result = check.to_json()
    result["statements"] = [jsonbounded.loads(a.payload, source=a.where) for a in check.verified]
    return result


@app.command("verify-attestation")
@grouped
def verify_attestation_command(
    images: list[str] = IMAGES_ARGUMENT,
    predicate_type: str = TYPE_OPTION,
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) that must have signed."),
    trust: TrustOptions = VERIFY_OPTIONS,
    policy_file: Path | None = typer.Option(
        None, "--policy", help='JSON {"require": [{"path": P, "equals": V} | {"path": P, "matches": RE}]}.'
    ),
    concurrency: int = CONCURRENCY_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print one structured result per image."),
) -> None:
    """Verify image attestations as cosign does; every image is checked, failures exit 10.

    Checks the envelope signature, the log entry, that the statement names the image's digest and is of the
    asked predicate type, and (--policy) the given JSON paths. Prints the verified statements, one per line.
    """
    from pipeline.signatures.attest import verify_attestations
    from pipeline.sigstore.intoto import predicate_type_uri
    from pipeline.sigstore.statement_policy import parse_statement_policy

    uri = predicate_type_uri(predicate_type)
    statement_policy: StatementPolicy | None = None
    if policy_file is not None:
        statement_policy = parse_statement_policy(read_input_file(policy_file, "policy file"), str(policy_file))
    refs = parse_images(images)
    policy = verification_policy(key, trust)
    check = statement_policy.problems if statement_policy is not None else None
    signatures = parse_signature_repository(signature_repository)
    with registry.client(refs, signatures) as client:
        results = verify_attestations(client, refs, policy, uri, concurrency=concurrency, statement_check=check,
                                      signatures=signatures)  # fmt: skip
    if json_output:
        print_json([_check_json(result) for result in results])
    else:
        for result in results:
            for attestation in result.verified:
                print(f"verified {attestation.format} attestation ({attestation.where})", file=sys.stderr)
                print(json.dumps(jsonbounded.loads(attestation.payload, source=attestation.where),
                                 separators=(",", ":")))  # fmt: skip
    failed = [result for result in results if not result.ok]
    for result in failed:
        print(f"error: verification failed: {one_line(result.reason())} ({result.reference})", file=sys.stderr)
    if failed:
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))
