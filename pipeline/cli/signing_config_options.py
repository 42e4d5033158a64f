"""``--signing-config FILE``: the Fulcio, Rekor and TSA a signing command uses, from a Sigstore signing config.

Every signing command (``sign``, ``sign-blob``, ``release``) takes it (env ``RELEASE_VECTOR_SIGNING_CONFIG``);
without it the shipped public-good config (``pipeline/data/signing_config.json``) decides, which names
``https://rekor.sigstore.dev`` and ``https://fulcio.sigstore.dev`` as before. ``--rekor-url``/``--fulcio-url``
(and ``REKOR_URL``/``FULCIO_URL``) still work, in place of the shipped config, and conflict with an explicit
``--signing-config`` (exit 2): two sources for one service is a mistake, not a preference.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Final

from pipeline.cli.common import read_input_file
from pipeline.cli.keyless_options import KeylessOptions
from pipeline.cli.trust_options import SigningTlogOptions, TlogOptions
from pipeline.errors import UsageError

if TYPE_CHECKING:  # the config's parser and the TSA client (X.509, httpx) load when a command signs (start-up)
    from pipeline.sigstore.signing_config import SigningConfig
    from pipeline.sigstore.tsa_client import TimestampClient

SHIPPED_SIGNING_CONFIG: Final = "the shipped public-good signing config"
REKOR_API_VERSIONS: Final = (1, 2)  # the Rekor API versions this tool signs into


@dataclass(frozen=True)
class SigningServices:
    rekor_url: str
    fulcio_url: str
    tsa_urls: tuple[str, ...]
    rekor_api_version: int = 1  # 2: a Rekor v2 (rekor-tiles) log, chosen by the signing config


def shipped_signing_config() -> bytes:
    return (resources.files("pipeline") / "data" / "signing_config.json").read_bytes()


def load_signing_config(path: Path | None) -> tuple[SigningConfig, str]:
    from pipeline.sigstore.signing_config import parse_signing_config

    if path is None:
        return parse_signing_config(shipped_signing_config(), SHIPPED_SIGNING_CONFIG), SHIPPED_SIGNING_CONFIG
    return parse_signing_config(read_input_file(path, "signing config"), str(path)), str(path)


def signing_services(
    path: Path | None,
    rekor_url: str | None,
    fulcio_url: str | None,
    now: datetime | None = None,
    tsa_url: str | None = None,
) -> SigningServices:
    """The services to sign with: the config's (the shipped one without ``path``), or the URLs given.

    Timestamp authorities come from an explicit config (or ``tsa_url``) only: the shipped public-good config
    names one too, but timestamping every signature is not what a run without options did before."""
    from pipeline.sigstore.signing_config import Selection, select_services

    flags = (("--rekor-url", rekor_url), ("--fulcio-url", fulcio_url), ("--timestamp-server-url", tsa_url))
    if path is not None and any(value is not None for _, value in flags):
        given = " and ".join(name for name, value in flags if value is not None)
        raise UsageError(
            f"--signing-config conflicts with {given} (or REKOR_URL/FULCIO_URL)",
            where=str(path),
            hint="name the services in the signing config, or drop --signing-config",
        )
    config, where = load_signing_config(path)
    moment = now or datetime.now(UTC)
    version = 1
    if rekor_url is None:
        rekor = select_services(config.rekor_urls, REKOR_API_VERSIONS, config.rekor_selection, moment,
                                "Rekor transparency log", where)  # fmt: skip
        if len(rekor) > 1:  # EXACT/ALL with several logs: this tool records each signature in one log
            print(f"note: the signing config selects {len(rekor)} Rekor logs; signing into {rekor[0].url} only",
                  file=sys.stderr)  # fmt: skip
        rekor_url, version = rekor[0].url, rekor[0].major_api_version
    if fulcio_url is None:
        fulcio_url = select_services(config.ca_urls, (1,), Selection("ANY", 0), moment,
                                     "Fulcio certificate authority", where)[0].url  # fmt: skip
    tsa_urls: tuple[str, ...] = () if tsa_url is None else (tsa_url,)
    if path is not None and config.tsa_urls:
        tsa = select_services(config.tsa_urls, (1,), config.tsa_selection, moment, "timestamp authority", where)
        tsa_urls = tuple(s.url for s in tsa)
    return SigningServices(rekor_url, fulcio_url, tsa_urls, version)


def with_signing_config(
    tlog: TlogOptions, keyless: KeylessOptions, *, timestamps: bool | str = True
) -> tuple[TlogOptions, KeylessOptions]:
    """The options with the URLs the signing config (or ``--rekor-url``/``--fulcio-url``/
    ``--timestamp-server-url``) gives, and the Rekor API version of the chosen log. ``timestamps``: True for
    a blob or attestation bundle, else the images' ``--bundle-format`` (every layout carries timestamps: the
    v3 bundle in ``timestampVerificationData``, the legacy ``.sig`` layer in cosign's rfc3161timestamp
    annotation); it says whether the legacy layout is written, which a Rekor v2 entry cannot go into."""
    legacy_layout = timestamps in ("legacy", "both")
    services = signing_services(
        tlog.signing_config, tlog.rekor_url, keyless.fulcio_url, tsa_url=tlog.timestamp_server_url
    )
    tsa_url = services.tsa_urls[0] if services.tsa_urls else None
    if len(services.tsa_urls) > 1:  # EXACT/ALL with several: one timestamp per signature here (as one log)
        print(f"note: the signing config selects {len(services.tsa_urls)} timestamp authorities; timestamping"
              f" with {tsa_url} only", file=sys.stderr)  # fmt: skip
    if services.rekor_api_version == 2 and tlog.tlog_upload:
        _check_v2_log(services, tsa_url, legacy_layout)
    fields = {f.name: getattr(tlog, f.name) for f in dataclasses.fields(TlogOptions)}
    fields.update(rekor_url=services.rekor_url, timestamp_server_url=tsa_url)
    return (
        SigningTlogOptions(**fields, rekor_api_version=services.rekor_api_version),
        replace(keyless, fulcio_url=services.fulcio_url),
    )


def _check_v2_log(services: SigningServices, tsa_url: str | None, legacy_layout: bool) -> None:
    """A Rekor v2 entry carries no log time (the signing time must come from a TSA) and no SET (cosign's
    legacy layout cannot hold it): exit 2 before anything is signed."""
    if tsa_url is None:
        raise UsageError(
            "the Rekor v2 log gives no signing time: signing into it needs a timestamp authority",
            where=services.rekor_url,
            hint="name one in the signing config's tsaUrls, or pass --timestamp-server-url",
        )
    if legacy_layout:
        raise UsageError(
            "a Rekor v2 log entry cannot go into cosign's legacy layout (its bundle annotation needs a"
            " SignedEntryTimestamp, which Rekor v2 does not give)",
            where=services.rekor_url,
            hint="sign with --bundle-format v3, or name a Rekor v1 log",
        )


@contextmanager
def timestamp_client(options: TlogOptions) -> Iterator[TimestampClient | None]:
    """The TSA every signature is timestamped by (None: no timestamps); its chain as the module doc says."""
    from pipeline.cosign.certificate import load_certificates
    from pipeline.cosign.policy import SHIPPED_ROOT
    from pipeline.cosign.timestamp import TimestampAuthority
    from pipeline.cosign.trust import default_trusted_root, timestamp_authorities_from_trusted_root
    from pipeline.http import bare_url
    from pipeline.sigstore.tsa_client import DEFAULT_TSA_URL, TimestampClient, is_local_tsa

    url = options.timestamp_server_url
    if url is None:
        yield None
        return
    if options.timestamp_certificate_chain is not None:
        chain = load_certificates(read_input_file(options.timestamp_certificate_chain, "TSA certificate chain"),
                                  str(options.timestamp_certificate_chain))  # fmt: skip
        authorities = [TimestampAuthority(tuple(chain))]
    elif url.rstrip("/") == DEFAULT_TSA_URL:
        authorities = timestamp_authorities_from_trusted_root(default_trusted_root(), SHIPPED_ROOT)
    elif is_local_tsa(url):
        authorities = []
    else:
        raise UsageError(
            "a timestamp authority other than the public-good one needs its certificate chain",
            where=bare_url(url),
            hint="pass --timestamp-certificate-chain FILE",
        )
    with TimestampClient(url, authorities) as client:
        if not authorities:
            client.authorities = (TimestampAuthority(tuple(client.certificate_chain())),)
            print(f"note: trusting the chain served by the timestamp authority on this machine ({client.url})",
                  file=sys.stderr)  # fmt: skip
        yield client


def date_log_entries(tlog: object, tsa: TimestampClient | None) -> None:
    """A Rekor v2 log's entries carry no time: the run's TSA dates them, also when deciding whether an
    existing signature is this run's (else every re-run would sign again)."""
    from pipeline.sigstore.rekor_v2_client import RekorV2Client

    if isinstance(tlog, RekorV2Client) and tsa is not None:
        tlog.date_with(tsa.authorities)
