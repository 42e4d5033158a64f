"""``release`` (assemble → plan → push, sign all, publish) and ``verify-release``."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from pipeline.artifact import ArtifactAnnotations, make_artifact, parse_source_date_epoch
from pipeline.cli.app import app
from pipeline.cli.bundle_options import BUNDLE_FORMAT_OPTION, parse_bundle_format, referrer_created
from pipeline.cli.common import load_signing_key, one_line, print_json, raw_stream, read_input_file
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
from pipeline.cli.registry_options import ALLOW_HTTP_OPTION, CACERT_OPTION, CONCURRENCY_OPTION, registry_client
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
from pipeline.cli.vector import DEFAULT_SOURCE, MIRROR_HELP, SOURCE_DATE_EPOCH, build_vector, load_source_file
from pipeline.cosign.keys import PUBLIC_KEY_LABEL, SigningKey, decode_pem, load_public_key, public_key_to_pem
from pipeline.errors import ExitCode, UsageError
from pipeline.localfiles import KEY_LIMIT
from pipeline.oci.mirror import parse_mirrors
from pipeline.oci.reference import parse_reference, parse_repository
from pipeline.plan import Action, Plan, build_plan
from pipeline.release import (
    ReleasePorts,
    ReleaseRequest,
    ReleaseVerification,
    apply_plan,
    desired_release,
    observe_release,
    verify_release,
)
from pipeline.secret import Secret
from pipeline.targets import DEFAULT_API_URL, GitHubOptions, GitHubTarget, ReleaseDirTarget, ReleaseTarget

GITHUB_TOKEN_ENV = "GITHUB_TOKEN"  # noqa: S105 (a variable name)

GITHUB_REPOSITORY_OPTION = typer.Option(
    None,
    "--github-repository",
    envvar="RELEASE_VECTOR_GITHUB_REPOSITORY",
    help="Publish to (verify against) the GitHub releases of OWNER/REPO; token from GITHUB_TOKEN.",
)
RELEASE_DIR_OPTION = typer.Option(
    None,
    "--release-dir",
    envvar="RELEASE_VECTOR_RELEASE_DIR",
    help="Local release target: DIR/VERSION/ gets cosign.pub, release.yaml and release.json.",
)
GITHUB_API_URL_OPTION = typer.Option(
    DEFAULT_API_URL,
    "--github-api-url",
    envvar="GITHUB_API_URL",
    help="GitHub REST API base URL (GitHub Enterprise: https://HOST/api/v3).",
)
EXCLUDE_OPTION = typer.Option(
    [],
    "--exclude-image",
    envvar="RELEASE_VECTOR_EXCLUDE_IMAGE",
    help="Glob of image names (as normalised: docker.io/library/python) that the release does not sign and "
    "verify-release does not check, e.g. third-party images you cannot push signatures to. Repeatable.",
)
MIRRORS_OPTION = typer.Option([], "--registry-mirror", envvar="RELEASE_VECTOR_REGISTRY_MIRROR", help=MIRROR_HELP)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@contextmanager
def release_target(
    github_repository: str | None, release_dir: Path | None, github_api_url: str
) -> Iterator[ReleaseTarget | None]:
    if github_repository and release_dir:
        raise UsageError("give --github-repository or --release-dir, not both")
    if release_dir is not None:
        yield ReleaseDirTarget(release_dir)
        return
    if github_repository is None:
        yield None
        return
    token = os.environ.get(GITHUB_TOKEN_ENV)
    with GitHubTarget(
        github_repository, Secret(token) if token else None, GitHubOptions(api_url=github_api_url)
    ) as target:
        yield target


@contextmanager
def _progress_reporter(version: str, total: int) -> Iterator[Callable[[Action, str], None]]:
    """Progress on stderr: a rich progress bar on a terminal, one plain line per action otherwise."""
    count = 0

    def line(action: Action, outcome: str) -> None:
        nonlocal count
        count += 1
        digest = f"@{action.digest}" if action.digest and action.kind == "sign-image" else ""
        _say(f"[{count}/{total}] {action.kind} {action.target}{digest}: {outcome}")

    if not sys.stderr.isatty() or total == 0:
        yield line
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(file=raw_stream(sys.stderr))) as bar:
        task = bar.add_task(f"release {version}", total=total)

        def advance(action: Action, outcome: str) -> None:
            bar.update(task, advance=1, description=f"release {version}: {action.kind} {outcome}")

        yield advance


def _print_plan_table(plan: Plan) -> None:
    """The plan as a rich table (on a terminal only: scripts get plain lines or --json)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"release {plan.version}: {len(plan.actions)} action(s), nothing written (dry run)")
    for column in ("#", "action", "target", "digest", "note"):
        table.add_column(column)
    for number, action in enumerate(plan.actions, 1):
        table.add_row(str(number), action.kind, action.target, action.digest or "", action.detail)
    Console(file=raw_stream(sys.stdout)).print(table)


def _key_for(spec: str, dry_run: bool) -> tuple[SigningKey | None, bytes]:
    """(signing key or None, public key PEM). A dry run may be given a public key: it writes nothing."""
    if dry_run and not spec.startswith("env://"):
        data = read_input_file(Path(spec), "key", limit=KEY_LIMIT)
        if decode_pem(data, spec).label == PUBLIC_KEY_LABEL:
            return None, public_key_to_pem(load_public_key(data, spec))
    signing_key = load_signing_key(spec)
    return signing_key, signing_key.public_key_pem()


@app.command("release")
def release_command(
    version: str = typer.Argument(..., help="The version to release (the vector artifact's tag).", show_default=False),
    source: Path = typer.Option(DEFAULT_SOURCE, "--source", envvar="RELEASE_VECTOR_SOURCE", help="Source definition."),
    repository: str = typer.Option(
        ..., "--repository", envvar="RELEASE_VECTOR_REPOSITORY", help="REGISTRY/REPO of the vector artifact."
    ),
    key: str | None = typer.Option(
        None, "--key", envvar="RELEASE_VECTOR_KEY", help=KEY_HELP + " A dry run also takes a public key."
    ),
    keyless: bool = KEYLESS_OPTION,
    identity_token: str | None = IDENTITY_TOKEN_OPTION,
    fulcio_url: str = FULCIO_URL_OPTION,
    fulcio_ca_roots: Path | None = FULCIO_CA_ROOTS_OPTION,
    ct_log_public_key: Path | None = SIGN_CT_LOG_KEY_OPTION,
    github_repository: str | None = GITHUB_REPOSITORY_OPTION,
    release_dir: Path | None = RELEASE_DIR_OPTION,
    github_api_url: str = GITHUB_API_URL_OPTION,
    registry_mirror: list[str] = MIRRORS_OPTION,
    git_revision: str | None = typer.Option(
        None, "--git-revision", envvar="RELEASE_VECTOR_GIT_REVISION", help="Commit id (default: the checkout's HEAD)."
    ),
    source_url: str | None = typer.Option(
        None, "--source-url", envvar="RELEASE_VECTOR_SOURCE_URL", help="org.opencontainers.image.source annotation."
    ),
    recursive: bool = typer.Option(False, "--recursive", help="Also sign each platform manifest of image indexes."),
    exclude_image: list[str] = EXCLUDE_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    dry_run: bool = typer.Option(
        False, "--dry-run", envvar="RELEASE_VECTOR_DRY_RUN", help="Print the plan and write nothing anywhere."
    ),
    allow_http_registry: bool = ALLOW_HTTP_OPTION,
    registry_cacert: Path | None = CACERT_OPTION,
    tlog_upload: bool = TLOG_UPLOAD_OPTION,
    rekor_url: str = REKOR_URL_OPTION,
    rekor_public_key: Path | None = SIGN_REKOR_KEY_OPTION,
    bundle_format: str = BUNDLE_FORMAT_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print the plan (dry run) or the result as JSON."),
) -> None:
    """Cut a release: assemble the vector, push it, sign it and every image it pins, publish.

    Looks at every target read-only first and does only what is missing: a re-run after success
    writes nothing, a re-run after a failure completes the release. The release (GitHub or
    --release-dir) is published last, after every signature and asset exists. Every signature is
    recorded in the transparency log (Rekor) unless --no-tlog-upload; a signature made earlier without
    the log is then not enough and gets a logged one beside it. With --keyless every signature is also
    (without --key: only) made keyless; a keyless-only release publishes no cosign.pub.
    """
    started = time.monotonic()
    if key is None and not keyless:
        raise UsageError("give --key, --keyless, or both")
    check_keyless_options(
        keyless=keyless, identity_token=identity_token, fulcio_ca_roots=fulcio_ca_roots, tlog_upload=tlog_upload
    )
    chosen_format = parse_bundle_format(bundle_format)
    mirrors = parse_mirrors(registry_mirror)
    artifact_repository = parse_repository(repository)
    signing_key, public_pem = _key_for(key, dry_run) if key is not None else (None, None)
    # One registry client for the whole release (assemble, look, sign): one ping, one pool of connections.
    loaded = load_source_file(source)
    image_refs = [parse_reference(f"{i.repository.name}:{i.tag}") for i in loaded.images]
    touched = [mirrors.apply(ref) for ref in image_refs] + [artifact_repository.tag(version)]
    with registry_client(touched, allow_http=allow_http_registry, cacert=registry_cacert) as client:
        built = build_vector(
            source,
            version,
            git_revision,
            mirrors,
            concurrency=concurrency,
            allow_http=allow_http_registry,
            cacert=registry_cacert,
            client=client,
            loaded=loaded,
        )
        epoch_text = os.environ.get(SOURCE_DATE_EPOCH, "").strip()
        epoch = parse_source_date_epoch(epoch_text) if epoch_text else None
        annotations = ArtifactAnnotations.from_epoch(
            version=version, revision=built.metadata.git_revision, source=source_url, epoch=epoch
        )
        request = ReleaseRequest(
            version=version,
            vector=built.vector,
            artifact=make_artifact(built.vector, annotations, mtime=epoch or 0),
            repository=artifact_repository,
            public_key_pem=public_pem,
            target_commitish=built.metadata.git_revision,
            recursive=recursive,
            excluded=tuple(exclude_image),
        )
        assembled = time.monotonic()
        _say(f"assembled {source}: {len(built.source.references())} images pinned, vector {request.artifact.digest}")
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
            release_target(github_repository, release_dir, github_api_url) as target,
        ):
            if keyless_port is not None:
                identity = keyless_port.identity
                request = dataclasses.replace(request, keyless_identity=(identity.identity, identity.issuer))
            ports = ReleasePorts(
                registry=client,
                public_key=load_public_key(public_pem, key or "--key") if public_pem is not None else None,
                key=signing_key,
                keyless=keyless_port,
                target=target,
                mirrors=mirrors,
                concurrency=concurrency,
                tlog=tlog,
                bundle_format=chosen_format,
                created=referrer_created() if chosen_format != "legacy" else None,
            )
            desired = desired_release(request, ports)
            plan = build_plan(desired, observe_release(desired, request, ports))
            planned = time.monotonic()
            if dry_run:
                if json_output:
                    print_json(plan.to_json())
                elif sys.stdout.isatty() and not plan.is_empty:
                    _print_plan_table(plan)
                else:
                    print(plan.render_text())
                _say(f"dry run: {len(plan.actions)} action(s) planned, nothing written")
                return
            if keyless_port is not None and any(a.kind in ("sign-vector", "sign-image") for a in plan.actions):
                keyless_port.signer()  # the certificate first: a refused token fails before anything is written
            with _progress_reporter(version, len(plan.actions)) as on_done:
                apply_plan(plan, request, ports, on_done=on_done)
    finished = time.monotonic()
    pinned = f"{request.artifact_reference}@{request.artifact.digest}"
    result = {
        "version": version,
        "artifact": str(request.artifact_reference),
        "artifact_digest": request.artifact.digest,
        "images": len(desired.images),
        "actions": plan.to_json(),
        "target": desired.target,
        "keyless": _keyless_json(request),
        "seconds": {
            "assemble": round(assembled - started, 3),
            "plan": round(planned - assembled, 3),
            "apply": round(finished - planned, 3),
        },
    }
    if json_output:
        print_json(result)
    elif plan.is_empty:
        print(f"release {version}: already complete, nothing written ({pinned})")
    else:
        print(
            f"release {version}: {len(plan.actions)} action(s) done; vector {pinned}; "
            f"{plan.count('sign-image')} image signature(s) added"
            + (f"; published on {desired.target}" if desired.target else "")
        )


def _keyless_json(request: ReleaseRequest) -> dict[str, str] | None:
    if request.keyless_identity is None:
        return None
    identity, issuer = request.keyless_identity
    return {"identity": identity, "issuer": issuer}


def _print_verification(result: ReleaseVerification) -> None:
    for image in result.images:
        pinned = f"{image.name}:{image.tag}@{image.digest}"
        if image.ok:
            print(f"ok      {pinned}")
        else:
            print(f"FAILED  {pinned}: {'; '.join(image.problems)}")
    for problem in result.release_problems:
        print(f"FAILED  release: {problem}")


@app.command("verify-release")
def verify_release_command(
    reference: str = typer.Argument(..., help="REGISTRY/REPO:VERSION or REGISTRY/REPO@DIGEST.", show_default=False),
    key: Path | None = typer.Option(None, "--key", help="Public key (PKIX PEM) of the release."),
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
    ignore_tags: bool = typer.Option(
        False, "--ignore-tags", help="Do not check that each image's tag still points at the pinned digest."
    ),
    github_repository: str | None = GITHUB_REPOSITORY_OPTION,
    release_dir: Path | None = RELEASE_DIR_OPTION,
    github_api_url: str = GITHUB_API_URL_OPTION,
    registry_mirror: list[str] = MIRRORS_OPTION,
    exclude_image: list[str] = EXCLUDE_OPTION,
    concurrency: int = CONCURRENCY_OPTION,
    allow_http_registry: bool = ALLOW_HTTP_OPTION,
    registry_cacert: Path | None = CACERT_OPTION,
    json_output: bool = typer.Option(False, "--json", help="Print one JSON result."),
) -> None:
    """Verify a whole release: the vector's signature, then every image it pins (signature on the pinned
    digest, tag still pointing there) and, with a release target, the published cosign.pub."""
    ref = parse_reference(reference)
    mirrors = parse_mirrors(registry_mirror)
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
    with (
        registry_client([ref], allow_http=allow_http_registry, cacert=registry_cacert) as client,
        release_target(github_repository, release_dir, github_api_url) as target,
    ):
        result = verify_release(
            client,
            ref,
            policy,
            mirrors=mirrors,
            check_tags=not ignore_tags,
            target=target,
            concurrency=concurrency,
            excluded=exclude_image,
        )
    failed = [image for image in result.images if not image.ok]
    if json_output:
        print_json(
            {
                "reference": result.reference,
                "artifact_digest": result.artifact_digest,
                "version": result.version,
                "ok": result.ok,
                "images": [image.to_json() for image in result.images],
                "release_problems": list(result.release_problems),
            }
        )
    else:
        _print_verification(result)
    _say(
        f"release {result.version or '?'} ({result.reference}@{result.artifact_digest}): vector signature ok; "
        f"{len(result.images) - len(failed)} of {len(result.images)} images ok"
        + (f"; {len(result.release_problems)} release problem(s)" if result.release_problems else "")
    )
    if not result.ok:
        for image in failed:
            problems = one_line("; ".join(image.problems))
            _say(f"error: verification failed: {problems} ({image.name}:{image.tag}@{image.digest})")
        for problem in result.release_problems:
            _say(f"error: {one_line(problem)}")
        hints = (hint for image in failed if image.verification is not None for hint in image.verification.hints)
        for hint in dict.fromkeys(hints):
            _say(f"hint: {one_line(hint)}")
        raise typer.Exit(int(ExitCode.VERIFICATION_FAILED))
