"""``--signing-config FILE``: the Fulcio, Rekor and TSA a signing command uses, from a Sigstore signing config.

Every signing command (``sign``, ``sign-blob``, ``release``) takes it (env ``RELEASE_VECTOR_SIGNING_CONFIG``);
without it the shipped public-good config (``pipeline/data/signing_config.json``) decides, which names
``https://rekor.sigstore.dev`` and ``https://fulcio.sigstore.dev`` as before. ``--rekor-url``/``--fulcio-url``
(and ``REKOR_URL``/``FULCIO_URL``) still work, in place of the shipped config, and conflict with an explicit
``--signing-config`` (exit 2): two sources for one service is a mistake, not a preference.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Final

from pipeline.cli.common import read_input_file
from pipeline.cli.keyless_options import KeylessOptions
from pipeline.cli.trust_options import TlogOptions
from pipeline.cosign.certificate import load_certificates
from pipeline.cosign.policy import SHIPPED_ROOT
from pipeline.cosign.timestamp import TimestampAuthority
from pipeline.cosign.trust import default_trusted_root, timestamp_authorities_from_trusted_root
from pipeline.errors import UsageError
from pipeline.http import bare_url
from pipeline.sigstore.signing_config import Selection, SigningConfig, parse_signing_config, select_services
from pipeline.sigstore.tsa_client import DEFAULT_TSA_URL, TimestampClient, is_local_tsa

SHIPPED_SIGNING_CONFIG: Final = "the shipped public-good signing config"
REKOR_API_VERSIONS: Final = (1,)  # the Rekor API versions this tool signs into


@dataclass(frozen=True)
class SigningServices:
    rekor_url: str
    fulcio_url: str
    tsa_urls: tuple[str, ...]


def shipped_signing_config() -> bytes:
    return (resources.files("pipeline") / "data" / "signing_config.json").read_bytes()


def load_signing_config(path: Path | None) -> tuple[SigningConfig, str]:
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
    if rekor_url is None:
        rekor = select_services(config.rekor_urls, REKOR_API_VERSIONS, config.rekor_selection, moment,
                                "Rekor transparency log", where)  # fmt: skip
        newer = [s for s in config.rekor_urls if s.valid_at(moment) and s.major_api_version > max(REKOR_API_VERSIONS)]
        if newer:
            print(f"note: the signing config also names Rekor v{newer[0].major_api_version} logs; signing into"
                  f" the Rekor v1 log {rekor[0].url}", file=sys.stderr)  # fmt: skip
        rekor_url = rekor[0].url
    if fulcio_url is None:
        fulcio_url = select_services(config.ca_urls, (1,), Selection("ANY", 0), moment,
                                     "Fulcio certificate authority", where)[0].url  # fmt: skip
    tsa_urls: tuple[str, ...] = () if tsa_url is None else (tsa_url,)
    if path is not None and config.tsa_urls:
        tsa = select_services(config.tsa_urls, (1,), config.tsa_selection, moment, "timestamp authority", where)
        tsa_urls = tuple(s.url for s in tsa)
    return SigningServices(rekor_url, fulcio_url, tsa_urls)


def with_signing_config(
    tlog: TlogOptions, keyless: KeylessOptions, *, timestamps: bool | str = True
) -> tuple[TlogOptions, KeylessOptions]:
    """The options with the URLs the signing config (or ``--rekor-url``/``--fulcio-url``/
    ``--timestamp-server-url``) gives. ``timestamps``: whether the command writes timestamps; for image
    signatures the ``--bundle-format`` (the v3 bundle carries them, the legacy layer does not yet).
    Without: ``--timestamp-server-url`` is refused, a config's TSA is left unused with a note."""
    if timestamps == "both" and tlog.timestamp_server_url is not None:
        print("note: only the v3 bundles carry the RFC 3161 timestamp; the legacy .sig layers do not yet",
              file=sys.stderr)  # fmt: skip
    timestamps = timestamps in (True, "v3", "both")
    if not timestamps and tlog.timestamp_server_url is not None:
        raise UsageError(
            "--timestamp-server-url is not supported for these signatures yet (sign-blob and the v3 bundles of"
            " sign write timestamps)",
            hint="drop --timestamp-server-url (RELEASE_VECTOR_TIMESTAMP_SERVER_URL), or sign --bundle-format v3",
        )
    services = signing_services(
        tlog.signing_config, tlog.rekor_url, keyless.fulcio_url, tsa_url=tlog.timestamp_server_url
    )
    tsa_url = services.tsa_urls[0] if services.tsa_urls else None
    if not timestamps and tsa_url is not None:
        print(f"note: the signing config's timestamp authority ({tsa_url}) is not used for these signatures yet",
              file=sys.stderr)  # fmt: skip
        tsa_url = None
    return (
        replace(tlog, rekor_url=services.rekor_url, timestamp_server_url=tsa_url),
        replace(keyless, fulcio_url=services.fulcio_url),
    )


@contextmanager
def timestamp_client(options: TlogOptions) -> Iterator[TimestampClient | None]:
    """The TSA every signature is timestamped by (None: no timestamps); its chain as the module doc says."""
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
