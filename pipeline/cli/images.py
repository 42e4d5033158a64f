"""``sign`` and ``verify``: image signatures in registries, in cosign's legacy ``.sig`` layout and as
cosign v3 Sigstore bundles attached as OCI referrers (``--bundle-format``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

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
    RegistryFlags,
    parse_annotations,
    parse_images,
)
from pipeline.cli.signing_config_options import date_log_entries, timestamp_client, with_signing_config
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
from pipeline.signatures.formats import layouts_for
from pipeline.signatures.layout import WriteConfirmations
from pipeline.signatures.sign import SignOutcome, sign_images
from pipeline.signatures.signers import signers_of
from pipeline.signatures.verify import ImageVerification, verify_images

IMAGES_ARGUMENT = typer.Argument(..., help="Image references (tag or digest).", show_default=False)


def _print_progress(outcome: SignOutcome) -> None:
    if outcome.error is None:
        print(f"{outcome.status}: {outcome.pinned}", file=sys.stderr)


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
    check_keyless_options(key, keyless_options, tlog_upload=tlog_options.tlog_upload)
    chosen = parse_bundle_format(bundle_format)
    tlog_options, keyless_options = with_signing_config(tlog_options, keyless_options, timestamps=chosen)
    refs = parse_images(images)
    notes = parse_annotations(annotations)
    for ref in refs:
        if ref.digest is None:
            print(
                f"WARNING: Image reference {ref} uses a tag, not a digest, to identify the image to sign; "
                "the digest it points at now is what gets signed.",
                file=sys.stderr,
            )
    signing_key = load_signing_key(key) if key is not None else None  # decrypted once per run
    with (
        transparency_log(tlog_options) as tlog,
        keyless_signer(keyless_options, tlog) as keyless,
        timestamp_client(tlog_options) as tsa,
        registry.client(refs) as client,
    ):
        date_log_entries(tlog, tsa)
        if tlog is not None:
            print(f"recording signatures in the transparency log {tlog.url}", file=sys.stderr)
        signers = signers_of(signing_key, keyless)
        created = referrer_created() if chosen != "legacy" else None
        confirmations = WriteConfirmations()  # every write read back once, after the last one
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
        )
    report_signing(outcomes, json_output)


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
    json_output: bool = typer.Option(False, "--json", help="Print one structured result per image."),
) -> None:
    """Verify image signatures as `cosign verify` does; every image is checked, failures exit 10.

    An image whose signatures could not be read (registry unreachable, refused, timeout, 5xx after retries)
    is unchecked: exit 5 (4 for refused credentials) when nothing failed, else 10 naming the unchecked ones.

    Both formats are looked for: the legacy sha256-<hex>.sig tag, and cosign v3 Sigstore bundles attached
    as OCI referrers (referrers API, else the sha256-<hex> fallback index). An image passes when one
    signature in either format verifies.
    """
    refs = parse_images(images)
    notes = parse_annotations(annotations)
    policy = verification_policy(key, trust)
    with registry.client(refs) as client, counter("verifying images", len(refs)) as tick:
        results = verify_images(client, refs, policy, annotations=notes, require_reference=check_reference,
                                concurrency=concurrency, on_result=lambda _result: tick())  # fmt: skip
    if json_output:
        print_json([_result_json(result) for result in results])
    else:
        for result in results:
            if result.ok:
                _print_verified(result, not trust.insecure_ignore_tlog, policy.keyless is not None)
    verdicts = [Verdict(r.reference, None if r.ok else r.reason(), r.unchecked) for r in results]
    finish(verdicts, [hint for result in results if not result.ok for hint in result.hints])
