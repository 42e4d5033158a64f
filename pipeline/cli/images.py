"""``sign`` and ``verify``: image signatures in registries, in cosign's legacy ``.sig`` layout and as
cosign v3 Sigstore bundles attached as OCI referrers (``--bundle-format``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipeline import jsonbounded
from pipeline.cli.app import app
from pipeline.cli.bundle_options import BUNDLE_FORMAT_OPTION, parse_bundle_format, referrer_created
from pipeline.cli.common import load_signing_key, one_line, print_json
from pipeline.cli.counter import counter
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
from pipeline.cli.trust_options import (
    TLOG_OPTIONS,
    VERIFY_OPTIONS,
    TlogOptions,
    transparency_log,
    verification_policy,
)
from pipeline.cli.verdicts import Verdict, finish
from pipeline.cosign.policy import TrustOptions
from pipeline.errors import ExitCode

if TYPE_CHECKING:
    from pipeline.oci.reference import Reference
    from pipeline.signatures.sign import SignOutcome
    from pipeline.signatures.verify import ImageVerification
    from pipeline.sigstore.rekor_client import RekorClient
    from pipeline.sigstore.rekor_v2_client import RekorV2Client
    from pipeline.sigstore.tsa_client import TimestampClient

IMAGES_ARGUMENT = typer.Argument(..., help="Image references (tag or digest).", show_default=False)


def _print_progress(outcome: SignOutcome) -> None:
    if outcome.error is None:
        print(f"{outcome.status}: {outcome.pinned}", file=sys.stderr)


def _warn_about_tags(refs: list[Reference]) -> None:
    for ref in refs:
        if ref.digest is None:
            print(
                f"WARNING: Image reference {ref} uses a tag, not a digest, to identify the image to sign; "
                "the digest it points at now is what gets signed.",
                file=sys.stderr,
            )


@app.command("sign")
@grouped
def sign_command(
    images: list[str] = IMAGES_ARGUMENT,
    key: str | None = typer.Option(None, "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP),
    keyless_options: KeylessOptions = SIGN_OPTIONS,
    annotations: list[str] = ANNOTATION_OPTION,
    recursive: bool = typer.Option(False, "--recursive", help="On an image index, sign each platform manifest too."),
    concurrency: int = CONCURRENCY_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    tlog_options: TlogOptions = TLOG_OPTIONS,
    bundle_format: str = BUNDLE_FORMAT_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON array of results."),
) -> None:
    """Sign images by digest, as `cosign sign` does; re-runs add nothing.

    Each reference is resolved once to its manifest digest, which is what gets signed. Each new
    signature is recorded in the transparency log (Rekor) and carries its bundle, unless --no-tlog-upload.
    --bundle-format v3 (or both) writes what cosign v3 writes: a Sigstore bundle as an OCI referrer.
    --keyless signs with a Fulcio certificate for the OIDC identity instead of (or, with --key, besides) the key.
    """
    from pipeline.cli.signing_config_options import timestamp_client, with_signing_config
    from pipeline.signatures import layout
    from pipeline.signatures.formats import layouts_for
    from pipeline.signatures.sign import sign_images
    from pipeline.signatures.signers import signers_of

    check_keyless_options(key, keyless_options, tlog_upload=tlog_options.tlog_upload)
    chosen = parse_bundle_format(bundle_format)
    tlog_options, keyless_options = with_signing_config(tlog_options, keyless_options, timestamps=chosen)
    refs = parse_images(images)
    notes = parse_annotations(annotations)
    signatures = parse_signature_repository(signature_repository)
    _warn_about_tags(refs)
    signing_key = load_signing_key(key) if key is not None else None  # decrypted once per run
    with (
        transparency_log(tlog_options) as tlog,
        keyless_signer(keyless_options, tlog) as keyless,
        timestamp_client(tlog_options) as tsa,
        registry.client(refs, signatures) as client,
    ):
        _start_logging(tlog, tsa)
        signers = signers_of(signing_key, keyless)
        confirmations = layout.WriteConfirmations()  # every write read back once, after the last one
        created = referrer_created() if chosen != "legacy" else None
        outcomes = sign_images(
            client,
            refs,
            signers,
            layouts_for(chosen, client, created=created, confirmations=confirmations, timestamps=tsa),
            log=tlog,
            annotations=notes,
            recursive=recursive,
            concurrency=concurrency,
            on_progress=_print_progress,
            confirmations=confirmations,
            signatures=signatures,
        )
    report_signing(outcomes, json_output)


def _start_logging(tlog: RekorClient | RekorV2Client | None, tsa: TimestampClient | None) -> None:
    from pipeline.cli.signing_config_options import date_log_entries

    date_log_entries(tlog, tsa)
    if tlog is not None:
        print(f"recording signatures in the transparency log {tlog.url}", file=sys.stderr)


def report_signing(outcomes: list[SignOutcome], json_output: bool) -> None:
    """Each signed image on stdout (lines or JSON), each failure on stderr; a failure exits with its code."""
    failures = [o for o in outcomes if o.error is not None]
    if json_output:
        print_json([o.to_json() for o in outcomes])
    else:
        for outcome in outcomes:
            if outcome.error is None:
                print(f"{outcome.pinned} {outcome.status}")
    errors = [failure.error for failure in failures if failure.error is not None]
    for error in errors:
        print(f"error: {error.one_line()}", file=sys.stderr)
    for hint in dict.fromkeys(error.hint for error in errors if error.hint):
        print(f"hint: {one_line(hint)}", file=sys.stderr)
    if failures:
        print(f"error: {len(failures)} of {len(outcomes)} images failed to sign", file=sys.stderr)
        raise typer.Exit(int(failures[0].error.exit_code if failures[0].error else ExitCode.UNEXPECTED))


def _print_verified(result: ImageVerification, tlog_checked: bool, keyless: bool) -> None:
    print(f"\nVerification for {result.reference} --", file=sys.stderr)
    print("The following checks were performed on each of these signatures:", file=sys.stderr)
    print("  - The cosign claims were validated", file=sys.stderr)
    if tlog_checked:
        print("  - Existence of the claims in the transparency log was verified offline", file=sys.stderr)
    if keyless:
        print(
            "  - The code-signing certificate was verified using trusted certificate authority certificates",
            file=sys.stderr,
        )
    else:
        print("  - The signatures were verified against the specified public key", file=sys.stderr)
    print(f"  - Signature formats found: {_formats(result.found)}; verified: {_formats(result.formats)}",
          file=sys.stderr)  # fmt: skip
    payloads = [jsonbounded.loads(layer.payload, source="payload") for layer in result.verified]
    payloads += [jsonbounded.loads(bundle.payload, source="payload") for bundle in result.bundles]
    print(json.dumps(payloads, separators=(",", ":")))


def _formats(formats: tuple[str, ...]) -> str:
    names = {"legacy": "legacy (.sig tag)", "v3": "cosign v3 (Sigstore bundle referrer)"}
    return ", ".join(names[f] for f in formats) or "none"


def _result_json(result: ImageVerification) -> dict[str, object]:
    return {
        "reference": result.reference,
        "digest": result.digest,
        "verified": result.ok,
        "formats_found": list(result.found),
        "signatures": [
            {
                "format": format_,
                "payload": jsonbounded.loads(payload, source="payload"),
                "signer": signature.signer,
                "issuer": signature.issuer,
                "integrated_time": signature.integrated_time,
                "log_index": signature.log_index,
                "checks": list(signature.checks),
            }
            for format_, payload, signature in [
                *(("legacy", layer.payload, layer.signature) for layer in result.verified),
                *(("v3", bundle.payload, bundle.signature) for bundle in result.bundles),
            ]
        ],
        "failures": [] if result.ok else list(dict.fromkeys(result.failures)),
    }


@app.command("verify")
@grouped
def verify_command(
    images: list[str] = IMAGES_ARGUMENT,
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) that must have signed."),
    trust: TrustOptions = VERIFY_OPTIONS,
    annotations: list[str] = ANNOTATION_OPTION,
    check_reference: bool = typer.Option(
        False, "--check-reference", help="Require the payload's docker-reference to name the image's repository."
    ),
    concurrency: int = CONCURRENCY_OPTION,
    registry: RegistryFlags = REGISTRY_OPTIONS,
    signature_repository: str | None = SIGNATURE_REPOSITORY_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print one structured result per image."),
) -> None:
    """Verify image signatures as `cosign verify` does; every image is checked, failures exit 10.

    An image whose signatures could not be read (registry unreachable, refused, timeout, 5xx after retries)
    is unchecked: exit 5 (4 for refused credentials) when nothing failed, else 10 naming the unchecked ones.

    Both formats are looked for: the legacy sha256-<hex>.sig tag, and cosign v3 Sigstore bundles attached
    as OCI referrers (referrers API, else the sha256-<hex> fallback index). An image passes when one
    signature in either format verifies.
    """
    from pipeline.signatures.verify import verify_images

    refs = parse_images(images)
    notes = parse_annotations(annotations)
    policy = verification_policy(key, trust)
    signatures = parse_signature_repository(signature_repository)
    with registry.client(refs, signatures) as client, counter("verifying images", len(refs)) as tick:
        results = verify_images(client, refs, policy, annotations=notes, require_reference=check_reference,
                                concurrency=concurrency, on_result=lambda _result: tick(),
                                signatures=signatures)  # fmt: skip
    if json_output:
        print_json([_result_json(result) for result in results])
    else:
        for result in results:
            if result.ok:
                _print_verified(result, not trust.insecure_ignore_tlog, policy.keyless is not None)
    verdicts = [Verdict(r.reference, None if r.ok else r.reason(), r.unchecked) for r in results]
    finish(verdicts, [hint for result in results if not result.ok for hint in result.hints])
