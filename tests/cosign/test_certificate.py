"""Keyless certificate checks: chain to a Fulcio root, validity at the log's time, EKU, identity, issuer.

Real data: the Fulcio certificates of ``dir-img-cosign-fulcio-rekor-valid`` (2023, issuer only in the
old 1.3.6.1.4.1.57264.1.1 extension; expired ten minutes after issue), ``registry-sig-manifest``
(2026, GitHub Actions, issuer in 1.3.6.1.4.1.57264.1.8) and ``sign-blob`` (2022). Chains that must fail
come from a throwaway CA made here.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pipeline.cosign.certificate import (
    FULCIO_ISSUER_V1_OID,
    FULCIO_ISSUER_V2_OID,
    FULCIO_USERNAME_SAN_OID,
    IdentityPolicy,
    build_chain,
    certificate_identity,
    load_certificates,
    oidc_issuer,
    verify_certificate,
)
from pipeline.cosign.rekor import parse_rekor_bundle
from pipeline.cosign.trust import fulcio_certificates_from_trusted_root
from pipeline.errors import InvalidInputError, UsageError, VerificationError
from tests.conftest import COSIGN_VECTORS

IMAGE_SIGNATURES = COSIGN_VECTORS / "image-signatures"
FULCIO_REKOR = IMAGE_SIGNATURES / "dir-img-cosign-fulcio-rekor-valid"
REGISTRY = COSIGN_VECTORS / "registry-sig-manifest"
TRUSTED_ROOT = COSIGN_VECTORS / "bundle-v03" / "trusted_root.public-good.json"
GITHUB_OAUTH = "https://github.com/login/oauth"
GITHUB_ACTIONS = "https://token.actions.githubusercontent.com"
SALRASHID_WORKFLOW = (
    "https://github.com/salrashid123/go-bazel-github-workflow/.github/workflows/release.yaml@refs/tags/v0.0.30"
)


@dataclass(frozen=True)
class KeylessCase:
    name: str
    leaf: x509.Certificate
    chain: list[x509.Certificate]  # what the signature carries (cosign's chain annotation), untrusted
    integrated_at: datetime
    identity: str
    issuer: str


def _annotation_case(folder_name: str, folder: Path, identity: str, issuer: str) -> KeylessCase:
    return KeylessCase(
        name=folder_name,
        leaf=load_certificates((folder / "cert.pem").read_bytes(), "cert.pem")[0],
        chain=load_certificates((folder / "chain.pem").read_bytes(), "chain.pem"),
        integrated_at=parse_rekor_bundle((folder / "bundle.json").read_text(), "bundle.json").integrated_at,
        identity=identity,
        issuer=issuer,
    )


def _sign_blob_case() -> KeylessCase:
    local_signed_payload = json.loads((COSIGN_VECTORS / "sign-blob" / "artifact.bundle").read_text())
    return KeylessCase(
        name="sign-blob",
        leaf=load_certificates(base64.b64decode(local_signed_payload["cert"]), "artifact.bundle")[0],
        chain=[],  # sign-blob's bundle carries no chain; the trusted root supplies the intermediate
        integrated_at=parse_rekor_bundle(local_signed_payload["rekorBundle"], "artifact.bundle").integrated_at,
        identity="daniel.bevenius@gmail.com",
        issuer=GITHUB_OAUTH,
    )


CASES = [
    _annotation_case("fulcio-rekor-valid", FULCIO_REKOR, "mitr@redhat.com", GITHUB_OAUTH),
    _annotation_case("registry-sig-manifest", REGISTRY, SALRASHID_WORKFLOW, GITHUB_ACTIONS),
    _sign_blob_case(),
]
FULCIO_REKOR_CASE = CASES[0]


@pytest.fixture(scope="module")
def fulcio_trust() -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    return fulcio_certificates_from_trusted_root(TRUSTED_ROOT.read_bytes(), TRUSTED_ROOT.name)


def _fulcio_v1_root() -> list[x509.Certificate]:
    return load_certificates((IMAGE_SIGNATURES / "fulcio_v1.crt.pem").read_bytes(), "fulcio_v1.crt.pem")


def _policy(case: KeylessCase) -> IdentityPolicy:
    return IdentityPolicy(identity=case.identity, issuer=case.issuer)


# --- real certificates ------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_certificates_verify_at_integrated_time(
    case: KeylessCase, fulcio_trust: tuple[list[x509.Certificate], list[x509.Certificate]]
) -> None:
    roots, intermediates = fulcio_trust
    verify_certificate(
        case.leaf,
        intermediates=[*case.chain, *intermediates],
        roots=roots,
        at=case.integrated_at,
        policy=_policy(case),
        where=case.name,
    )


@pytest.mark.parametrize("case", CASES[:2], ids=lambda c: c.name)
def test_annotation_chain_reaches_the_fulcio_v1_root(case: KeylessCase) -> None:
    chain = build_chain(case.leaf, intermediates=case.chain, roots=_fulcio_v1_root(), at=case.integrated_at, where="x")
    assert [c.subject.rfc4514_string() for c in chain] == [
        "",
        "CN=sigstore-intermediate,O=sigstore.dev",
        "CN=sigstore,O=sigstore.dev",
    ]
    assert chain[-1] == _fulcio_v1_root()[0]


@pytest.mark.parametrize("reverse", [False, True])
def test_two_roots_with_one_name_are_told_apart_by_signature(
    reverse: bool, fulcio_trust: tuple[list[x509.Certificate], list[x509.Certificate]]
) -> None:
    roots, intermediates = fulcio_trust
    assert len(roots) == 2 and roots[0].subject == roots[1].subject
    ordered = list(reversed(roots)) if reverse else roots
    case = CASES[2]
    chain = build_chain(case.leaf, intermediates=intermediates, roots=ordered, at=case.integrated_at, where="x")
    assert chain[-1] == _fulcio_v1_root()[0]


def test_certificate_identity_reports_sans_and_issuer() -> None:
    assert certificate_identity(CASES[0].leaf) == (["mitr@redhat.com"], GITHUB_OAUTH)
    assert certificate_identity(CASES[1].leaf) == ([SALRASHID_WORKFLOW], GITHUB_ACTIONS)
    assert certificate_identity(CASES[2].leaf) == (["daniel.bevenius@gmail.com"], GITHUB_OAUTH)


def test_expired_certificate_is_rejected_now(
    fulcio_trust: tuple[list[x509.Certificate], list[x509.Certificate]],
) -> None:
    roots, _ = fulcio_trust
    case = FULCIO_REKOR_CASE
    with pytest.raises(VerificationError) as caught:
        verify_certificate(
            case.leaf,
            intermediates=case.chain,
            roots=roots,
            at=datetime.now(UTC),
            policy=_policy(case),
            where="cert.pem",
        )
    assert "the signing certificate was not valid at" in caught.value.message
    assert "(valid from 2023-01-20T20:51:31Z to 2023-01-20T21:01:31Z)" in caught.value.message
    assert caught.value.where == "cert.pem"


@pytest.mark.parametrize(
    ("moment", "valid"),
    [
        (datetime(2023, 1, 20, 20, 51, 30, tzinfo=UTC), False),
        (datetime(2023, 1, 20, 20, 51, 31, tzinfo=UTC), True),
        (datetime(2023, 1, 20, 21, 1, 31, tzinfo=UTC), True),
        (datetime(2023, 1, 20, 21, 1, 32, tzinfo=UTC), False),
    ],
    ids=["before-notBefore", "notBefore", "notAfter", "after-notAfter"],
)
def test_validity_window_is_inclusive(
    moment: datetime, valid: bool, fulcio_trust: tuple[list[x509.Certificate], list[x509.Certificate]]
) -> None:
    roots, _ = fulcio_trust
    case = FULCIO_REKOR_CASE  # issued 20:51:31, integrated 20:51:33, expired 21:01:31

    def check() -> None:
        verify_certificate(case.leaf, intermediates=case.chain, roots=roots, at=moment, policy=_policy(case), where="c")

    if valid:
        check()
    else:
        with pytest.raises(VerificationError, match="the signing certificate was not valid at"):
            check()


def test_naive_time_is_a_programming_error() -> None:
    case = FULCIO_REKOR_CASE
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_certificate(
            case.leaf,
            intermediates=case.chain,
            roots=_fulcio_v1_root(),
            at=datetime(2023, 1, 20, 20, 52),
            policy=_policy(case),
            where="c",
        )


def _verify_fulcio_case(policy: IdentityPolicy, case: KeylessCase = FULCIO_REKOR_CASE) -> None:
    verify_certificate(
        case.leaf,
        intermediates=case.chain,
        roots=_fulcio_v1_root(),
        at=case.integrated_at,
        policy=policy,
        where="cert.pem",
    )


def test_wrong_identity_is_rejected() -> None:
    with pytest.raises(
        VerificationError,
        match=re.escape("certificate identity is not 'someone@example.com': it names mitr@redhat.com"),
    ):
        _verify_fulcio_case(IdentityPolicy(identity="someone@example.com", issuer=GITHUB_OAUTH))


def test_identity_is_compared_exactly() -> None:
    with pytest.raises(VerificationError, match="certificate identity is not"):
        _verify_fulcio_case(IdentityPolicy(identity="MITR@redhat.com", issuer=GITHUB_OAUTH))


def test_wrong_issuer_is_rejected() -> None:
    with pytest.raises(
        VerificationError, match=f"OIDC issuer is not 'https://accounts.google.com': it is {GITHUB_OAUTH}"
    ):
        _verify_fulcio_case(IdentityPolicy(identity="mitr@redhat.com", issuer="https://accounts.google.com"))


@pytest.mark.parametrize(
    ("identity_regexp", "issuer_regexp"),
    [
        (r"@redhat\.com$", r"^https://github\.com/"),
        (r"redhat", r"github"),  # unanchored search, as Go's regexp.MatchString
        (r"^mitr@redhat\.com$", r"^https://github\.com/login/oauth$"),
    ],
)
def test_regexps_search_like_cosign(identity_regexp: str, issuer_regexp: str) -> None:
    _verify_fulcio_case(IdentityPolicy(identity_regexp=identity_regexp, issuer_regexp=issuer_regexp))


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (IdentityPolicy(identity_regexp=r"^redhat", issuer=GITHUB_OAUTH), r"identity is not matching '\^redhat'"),
        (IdentityPolicy(identity_regexp=r"@gmail\.com$", issuer=GITHUB_OAUTH), "identity is not matching"),
        (IdentityPolicy(identity="mitr@redhat.com", issuer_regexp=r"^https://token\."), "OIDC issuer is not matching"),
    ],
)
def test_regexps_that_do_not_match_are_rejected(policy: IdentityPolicy, reason: str) -> None:
    with pytest.raises(VerificationError, match=reason):
        _verify_fulcio_case(policy)


def test_workflow_identity_regexp_on_the_registry_certificate() -> None:
    policy = IdentityPolicy(
        identity_regexp=r"^https://github\.com/salrashid123/go-bazel-github-workflow/\.github/workflows/.+@refs/tags/v",
        issuer=GITHUB_ACTIONS,
    )
    _verify_fulcio_case(policy, CASES[1])


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"issuer": GITHUB_OAUTH}, "needs --certificate-identity or --certificate-identity-regexp"),
        ({"identity": "a@b"}, "needs --certificate-oidc-issuer or --certificate-oidc-issuer-regexp"),
        ({"identity": "a@b", "identity_regexp": "a", "issuer": GITHUB_OAUTH}, "not both"),
        ({"identity_regexp": "(", "issuer": GITHUB_OAUTH}, "is not a valid regular expression"),
    ],
)
def test_incomplete_or_contradictory_policies_are_usage_errors(fields: dict[str, str], reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        IdentityPolicy(**fields)


def test_load_certificates_reads_a_whole_chain() -> None:
    chain = load_certificates((FULCIO_REKOR / "chain.pem").read_bytes(), "chain.pem")
    assert [c.subject.rfc4514_string() for c in chain] == [
        "CN=sigstore-intermediate,O=sigstore.dev",
        "CN=sigstore,O=sigstore.dev",
    ]


@pytest.mark.parametrize("garbage", [b"", b"hello", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_load_certificates_rejects_garbage(garbage: bytes) -> None:
    with pytest.raises(InvalidInputError, match="not a PEM certificate") as caught:
        load_certificates(garbage, "annotation dev.sigstore.cosign/certificate")
    assert caught.value.where == "annotation dev.sigstore.cosign/certificate"


# --- a throwaway CA for chains that must fail ----------------------------------------------------

START = datetime(2024, 1, 1, tzinfo=UTC)
SIGNED_AT = START + timedelta(minutes=2)


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sigstore.dev"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _ca(
    common_name: str,
    issuer: Issued | None = None,
    *,
    ca: bool = True,
    path_length: int | None = None,
    eku: list[x509.ObjectIdentifier] | None = None,
    lifetime: timedelta = timedelta(days=365),
) -> Issued:
    key = ec.generate_private_key(ec.SECP384R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START - timedelta(days=1))
        .not_valid_after(START - timedelta(days=1) + lifetime)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    certificate = builder.sign(issuer.key if issuer else key, hashes.SHA384())
    return Issued(certificate, key)


def _leaf(
    issuer: Issued,
    *,
    email: str = "dev@example.com",
    oidc_issuers: dict[x509.ObjectIdentifier, bytes] | None = None,
    code_signing: bool = True,
    extra_sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    if oidc_issuers is None:
        oidc_issuers = {FULCIO_ISSUER_V2_OID: _utf8_string(GITHUB_ACTIONS)}
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(issuer.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + timedelta(minutes=10))
        .add_extension(x509.SubjectAlternativeName([x509.RFC822Name(email), *(extra_sans or [])]), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CODE_SIGNING if code_signing else ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    )
    for oid, value in oidc_issuers.items():
        builder = builder.add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
    return builder.sign(issuer.key, hashes.SHA256())


def _utf8_string(text: str) -> bytes:
    encoded = text.encode()
    assert len(encoded) < 128
    return bytes([0x0C, len(encoded)]) + encoded


THROWAWAY_POLICY = IdentityPolicy(identity="dev@example.com", issuer=GITHUB_ACTIONS)


def _verify_synthetic(
    leaf: x509.Certificate, intermediates: list[x509.Certificate], roots: list[x509.Certificate]
) -> None:
    verify_certificate(
        leaf, intermediates=intermediates, roots=roots, at=SIGNED_AT, policy=THROWAWAY_POLICY, where="leaf"
    )


def test_throwaway_chain_verifies_against_its_own_root() -> None:
    root = _ca("sigstore")
    intermediate = _ca("sigstore-intermediate", root, path_length=0, eku=[ExtendedKeyUsageOID.CODE_SIGNING])
    _verify_synthetic(_leaf(intermediate), [intermediate.certificate], [root.certificate])


def test_chain_to_another_root_is_rejected(fulcio_trust: tuple[list[x509.Certificate], list[x509.Certificate]]) -> None:
    roots, intermediates = fulcio_trust
    impostor_root = _ca("sigstore")  # same name as Fulcio's root, another key
    impostor_intermediate = _ca("sigstore-intermediate", impostor_root)
    leaf = _leaf(impostor_intermediate)
    with pytest.raises(VerificationError, match=r"does not chain to a trusted root: .* is not signed by") as caught:
        _verify_synthetic(leaf, [impostor_intermediate.certificate, impostor_root.certificate, *intermediates], roots)
    assert "\n" not in str(caught.value)


def test_real_chain_against_a_throwaway_root_is_rejected() -> None:
    case = FULCIO_REKOR_CASE
    with pytest.raises(VerificationError, match="does not chain to a trusted root"):
        verify_certificate(
            case.leaf,
            intermediates=case.chain,
            roots=[_ca("other").certificate],
            at=case.integrated_at,
            policy=_policy(case),
            where="c",
        )


def test_missing_intermediate_is_named() -> None:
    root = _ca("sigstore")
    intermediate = _ca("sigstore-intermediate", root)
    with pytest.raises(
        VerificationError,
        match=re.escape("no trusted root or intermediate is named 'CN=sigstore-intermediate,O=sigstore.dev'"),
    ):
        _verify_synthetic(_leaf(intermediate), [], [root.certificate])


def test_issuer_that_is_not_a_ca_is_rejected() -> None:
    root = _ca("sigstore")
    not_a_ca = _ca("sigstore-intermediate", root, ca=False)
    with pytest.raises(VerificationError, match=re.escape("'CN=sigstore-intermediate,O=sigstore.dev' is not a CA")):
        _verify_synthetic(_leaf(not_a_ca), [not_a_ca.certificate], [root.certificate])


def test_path_length_constraint_is_enforced() -> None:
    root = _ca("sigstore", path_length=0)
    intermediate = _ca("sigstore-intermediate", root)
    with pytest.raises(VerificationError, match="allows 0 intermediates below it, the chain has 1"):
        _verify_synthetic(_leaf(intermediate), [intermediate.certificate], [root.certificate])


def test_intermediate_restricted_to_tls_is_rejected() -> None:
    root = _ca("sigstore")
    intermediate = _ca("sigstore-intermediate", root, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    with pytest.raises(VerificationError, match="may not issue code-signing certificates"):
        _verify_synthetic(_leaf(intermediate), [intermediate.certificate], [root.certificate])


def test_intermediate_expired_at_signing_time_is_rejected() -> None:
    root = _ca("sigstore")
    intermediate = _ca("sigstore-intermediate", root, lifetime=timedelta(hours=1))
    with pytest.raises(
        VerificationError,
        match=re.escape("'CN=sigstore-intermediate,O=sigstore.dev' was not valid at 2024-01-01T00:02:00Z"),
    ):
        _verify_synthetic(_leaf(intermediate), [intermediate.certificate], [root.certificate])


def test_leaf_without_code_signing_is_rejected() -> None:
    root = _ca("sigstore")
    with pytest.raises(VerificationError, match="not for code signing"):
        _verify_synthetic(_leaf(root, code_signing=False), [], [root.certificate])


def test_untrusted_self_signed_cert_in_the_chain_does_not_anchor_trust() -> None:
    trusted = _ca("sigstore")
    untrusted = _ca("sigstore")
    with pytest.raises(VerificationError, match="does not chain to a trusted root"):
        _verify_synthetic(_leaf(untrusted), [untrusted.certificate], [trusted.certificate])


@pytest.mark.parametrize(
    ("extensions", "expected"),
    [
        ({FULCIO_ISSUER_V1_OID: b"https://accounts.google.com"}, "https://accounts.google.com"),
        ({FULCIO_ISSUER_V2_OID: _utf8_string(GITHUB_ACTIONS)}, GITHUB_ACTIONS),
        (
            {FULCIO_ISSUER_V1_OID: b"https://old.example", FULCIO_ISSUER_V2_OID: _utf8_string(GITHUB_ACTIONS)},
            GITHUB_ACTIONS,
        ),
        ({}, None),
    ],
    ids=["v1-raw", "v2-utf8string", "v2-wins", "none"],
)
def test_oidc_issuer_extensions(extensions: dict[x509.ObjectIdentifier, bytes], expected: str | None) -> None:
    assert oidc_issuer(_leaf(_ca("ca"), oidc_issuers=extensions)) == expected


def test_certificate_without_issuer_is_rejected() -> None:
    root = _ca("sigstore")
    with pytest.raises(VerificationError, match=r"OIDC issuer is not .*: it is absent"):
        _verify_synthetic(_leaf(root, oidc_issuers={}), [], [root.certificate])


def test_fulcio_username_other_name_counts_as_an_identity() -> None:
    root = _ca("sigstore")
    username = x509.OtherName(FULCIO_USERNAME_SAN_OID, _utf8_string("alice!example.com"))
    leaf = _leaf(root, extra_sans=[username, x509.UniformResourceIdentifier("https://example.com/ci")])
    assert certificate_identity(leaf)[0] == ["dev@example.com", "https://example.com/ci", "alice!example.com"]
    verify_certificate(
        leaf,
        intermediates=[],
        roots=[root.certificate],
        at=SIGNED_AT,
        policy=IdentityPolicy(identity="alice!example.com", issuer=GITHUB_ACTIONS),
        where="leaf",
    )
