"""``sign`` and ``verify``: image signatures in registries, in cosign's legacy ``.sig`` layout and as
cosign v3 Sigstore bundles attached as OCI referrers (``--bundle-format``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from pipeline.cli.app import app
from pipeline.cli.bundle_options import BUNDLE_FORMAT_OPTION, parse_bundle_format, referrer_created
from pipeline.cli.common import load_signing_key, one_line, print_json
from pipeline.cli.keyless_options import (
    FULCIO_CA_ROOTS_OPTION,
    FULCIO_URL_OPTION,
    IDENTITY_TOKEN_OPTION,
    KEYLESS_OPTION,
    SIGN_CT_LOG_KEY_OPTION,
    check_keyless_options,
    keyless_signing,
)
from pipeline.cli.keys import KEY_HELP
from pipeline.cli.registry_options import (
    ALLOW_HTTP_OPTION,
    ANNOTATION_OPTION,
    CACERT_OPTION,
    CONCURRENCY_OPTION,
    parse_annotations,
    parse_images,
    registry_client,
)
from pipeline.cli.trust_options import (
    CA_INTERMEDIATES_OPTION,
    CA_ROOTS_OPTION,
    CT_LOG_KEY_OPTION,
    IDENTITY_OPTION,
    IDENTITY_RE_OPTION,
    IGNORE_SCT_OPTION,
    IGNORE_TLOG_OPTION,
    ISSUER_OPTION,
    ISSUER_RE_OPTION,
    REKOR_PUBLIC_KEY_OPTION,
    REKOR_URL_OPTION,
    SIGN_REKOR_KEY_OPTION,
    TLOG_UPLOAD_OPTION,
    TRUSTED_ROOT_OPTION,
    build_policy,
    transparency_log,
)
from pipeline.errors import ExitCode, UsageError
from pipeline.signing import SignOutcome, sign_images
from pipeline.verification import ImageVerification, verify_images

IMAGES_ARGUMENT = typer.Argument(..., help="Image references (tag or digest).", show_default=False)


def _print_progress(outcome: SignOutcome) -> None:
    if outcome.error is None:
        print(f"{outcome.status}: {outcome.pinned}", file=sys.stderr)


@app.command("sign")
def sign_command(
    images: list[str] = IMAGES_ARGUMENT,
    key: str | None = typer.Option(None, "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP),
    keyless: bool = KEYLESS_OPTION,
    identity_token: str | None = IDENTITY_TOKEN_OPTION,
    fulcio_url: str = FULCIO_URL_OPTION,
    fulcio_ca_roots: Path | None = FULCIO_CA_ROOTS_OPTION,
    ct_log_public_key: Path | None = SIGN_CT_LOG_KEY_OPTION,
    annotations: list[str] = ANNOTATION_OPTION,
    recursive: bool = typer.Option(False, "--recursive", help="On an image index, sign each platform manifest too."),
    concurrency: int = CONCURRENCY_OPTION,
    allow_http_registry: bool = ALLOW_HTTP_OPTION,
    registry_cacert: Path | None = CACERT_OPTION,
    tlog_upload: bool = TLOG_UPLOAD_OPTION,
    rekor_url: str = REKOR_URL_OPTION,
    rekor_public_key: Path | None = SIGN_REKOR_KEY_OPTION,
    bundle_format: str = BUNDLE_FORMAT_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print a JSON array of results."),
) -> None:
    """Sign images by digest, as `cosign sign --key` (legacy layout) does; re-runs add nothing.

    Each reference is resolved once to its manifest digest, which is what gets signed. Each new
    signature is recorded in the transparency log (Rekor) and carries its bundle, unless --no-tlog-upload.
    --bundle-format v3 (or both) writes what cosign v3 writes: a Sigstore bundle as an OCI referrer.
    --keyless signs with a Fulcio certificate for the OIDC identity instead of (or, with --key, besides) the key.
    """
    if key is None and not keyless:
        raise UsageError("give --key, --keyless, or both")
    check_keyless_options(
        keyless=keyless, identity_token=identity_token, fulcio_ca_roots=fulcio_ca_roots, tlog_upload=tlog_upload
    )
    refs = parse_images(images)
    notes = parse_annotations(annotations)
    chosen = parse_bundle_format(bundle_format)
    for ref in refs:
        if ref.digest is None:
            print(
                f"WARNING: Image reference {ref} uses a tag, not a digest, to identify the image to sign; "
                "the digest it points at now is what gets signed.",
                file=sys.stderr,
            )
    signing_key = load_signing_key(key) if key is not None else None  # decrypted once per run
    with (
        transparency_log(upload=tlog_upload, rekor_url=rekor_url, rekor_public_key=rekor_public_key) as tlog,
        keyless_signing(
            enabled=keyless,
            identity_token=identity_token,
            fulcio_url=fulcio_url,
            fulcio_ca_roots=fulcio_ca_roots,
            tlog=tlog,
            ct_log_public_key=ct_log_public_key,
        ) as keyless_port,  # fmt: skip
        registry_client(refs, allow_http=allow_http_registry, cacert=registry_cacert) as client,
    ):
        if tlog is not None:
            print(f"recording signatures in the transparency log {tlog.url}", file=sys.stderr)
        outcomes = sign_images(
            client,
            refs,
            signing_key,
            keyless=keyless_port,
            annotations=notes,
            recursive=recursive,
            concurrency=concurrency,
            on_progress=_print_progress,
            tlog=tlog,
            bundle_format=chosen,
            created=referrer_created() if chosen != "legacy" else None,
        )
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
    payloads = [json.loads(layer.payload) for layer in result.verified]
    payloads += [json.loads(bundle.payload) for bundle in result.bundles]
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
                "payload": json.loads(payload),
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
def verify_command(
    images: list[str] = IMAGES_ARGUMENT,
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) that must have signed."),
    certificate_identity: str | None = IDENTITY_OPTION,
    certificate_identity_regexp: str | None = IDENTITY_RE_OPTION,
    certificate_oidc_issuer: str | None = ISSUER_OPTION,
    certificate_oidc_issuer_regexp: str | None = ISSUER_RE_OPTION,
    ca_roots: Path | None = CA_ROOTS_OPTION,
    ca_intermediates: Path | None = CA_INTERMEDIATES_OPTION,
    rekor_public_key: Path | None = REKOR_PUBLIC_KEY_OPTION,
    trusted_root: Path | None = TRUSTED_ROOT_OPTION,
    insecure_ignore_tlog: bool = IGNORE_TLOG_OPTION,
    ct_log_public_key: Path | None = CT_LOG_KEY_OPTION,
    insecure_ignore_sct: bool = IGNORE_SCT_OPTION,
    annotations: list[str] = ANNOTATION_OPTION,
    check_reference: bool = typer.Option(
        False, "--check-reference", help="Require the payload's docker-reference to name the image's repository."
    ),
    concurrency: int = CONCURRENCY_OPTION,
    allow_http_registry: bool = ALLOW_HTTP_OPTION,
    registry_cacert: Path | None = CACERT_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print one structured result per image."),
) -> None:
    """Verify image signatures as `cosign verify` does; every image is checked, failures exit 10.

    Both formats are looked for: the legacy sha256-<hex>.sig tag, and cosign v3 Sigstore bundles attached
    as OCI referrers (referrers API, else the sha256-<hex> fallback index). An image passes when one
    signature in either format verifies.
    """
    refs = parse_images(images)
    notes = parse_annotations(annotations)
    policy = build_policy(
        key=key,
        certificate_identity=certificate_identity,
        certificate_identity_regexp=certificate_identity_regexp,
        certificate_oidc_issuer=certificate_oidc_issuer,
        certificate_oidc_issuer_regexp=certificate_oidc_issuer_regexp,
        ca_roots=ca_roots,
        ca_intermediates=ca_intermediates,
        rekor_public_key=rekor_public_key,
        insecure_ignore_tlog=insecure_ignore_tlog,
        ct_log_public_key=ct_log_public_key,
        insecure_ignore_sct=insecure_ignore_sct,
        trusted_root=trusted_root,
    )
    with registry_client(refs, allow_http=allow_http_registry, cacert=registry_cacert) as client:
        results = verify_images(
            client, refs, policy, annotations=notes, require_reference=check_reference, concurrency=concurrency
        )
    if json_output:
        print_json([_result_json(result) for result in results])
    else:
        for result in results:
            if result.ok:
                _print_verified(result, not insecure_ignore_tlog, policy.keyless is not None)
    failed = [result for result in results if not result.ok]
    for result in failed:
        print(f"error: verification failed: {one_line(result.reason())} ({result.reference})", file=sys.stderr)
    for hint in dict.fromkeys(hint for result in failed for hint in result.hints):
        print(f"hint: {one_line(hint)}", file=sys.stderr)
    if failed:
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))
