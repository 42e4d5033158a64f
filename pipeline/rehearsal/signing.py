"""What the rehearsal signs with and verifies against: the TSA stand-in, the Rekor log(s) and their trusted root.

Every rehearsal starts the timestamp authority stand-in (:mod:`pipeline.rehearsal.tsa_server`, its own
certificate chain) and timestamps every signature with it: the legacy ``.sig`` layers in cosign's
``rfc3161timestamp`` annotation, the v3 bundles in ``timestampVerificationData``. It writes, beside the keys,
``tsa-chain.pem`` (what ``release`` checks the TSA's answers with) and ``trusted_root.json`` (the logs' keys and
the TSA's chain: what ``verify-release --trusted-root`` trusts, as sigstore-js or cosign would be given it).

With ``rekor_v2`` it also starts the Rekor v2 stand-in (:mod:`pipeline.rehearsal.log_server_v2`) and signs
through a ``signing_config.json`` that names it (``majorApiVersion`` 2) and the TSA: a v2 entry carries no
time and no SET, so the release writes v3 bundles only (``--bundle-format v3``) and verification dates them
by the timestamps. The trusted root lists the v2 log with its C2SP key hash as ``logId``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from pipeline.cosign.keys import load_public_key
from pipeline.rehearsal.log_server import LogServer
from pipeline.rehearsal.log_server_v2 import LogServerV2
from pipeline.rehearsal.tsa_server import TsaServer
from pipeline.sigstore.signing_config import SIGNING_CONFIG_MEDIA_TYPE
from pipeline.sigstore.trusted_root_writer import Authority, LogKey, trusted_root_json

# Fulcio is named by a signing config even when nothing signs keyless; it is then never contacted.
UNUSED_FULCIO: Final = "https://fulcio.sigstore.dev"


@dataclass(frozen=True)
class RehearsalSigning:
    sign_args: list[str]  # release's options for the log(s) and the TSA
    verify_args: list[str]  # verify-release's: the trusted root (and the v1 log's key)
    tsa_url: str
    rekor_v2_url: str | None
    description: str


def _service(url: str, version: int, since: datetime) -> dict[str, object]:
    start = since.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"url": url, "majorApiVersion": version, "validFor": {"start": start}, "operator": "rehearsal"}


def rehearsal_signing(
    stack: contextlib.ExitStack,
    keys: Path,
    log: LogServer,
    rekor_public_key: Path,
    rekor_v2: bool,
    fulcio_url: str | None,
) -> RehearsalSigning:
    """Start the TSA (and with ``rekor_v2`` the v2 log) on ``stack``; write their trust material into ``keys``."""
    since = datetime.now(UTC) - timedelta(days=1)
    tsa = stack.enter_context(TsaServer())
    chain = keys / "tsa-chain.pem"
    chain.write_bytes(tsa.authority.chain_pem())
    tlogs = [LogKey(log.url, load_public_key(log.public_key_pem(), str(rekor_public_key)), since)]
    sign_args = ["--rekor-url", log.url, "--rekor-public-key", str(rekor_public_key),
                 "--timestamp-server-url", tsa.timestamp_url, "--timestamp-certificate-chain", str(chain)]  # fmt: skip
    v2_url = None
    if rekor_v2:
        v2 = stack.enter_context(LogServerV2())
        v2_url = v2.url
        v2_key = keys / "rekor-v2.pub"
        v2_key.write_bytes(v2.public_key_pem())
        tlogs.append(LogKey(v2.url, v2.public_key, since, log_id=v2.log_id))
        config = keys / "signing_config.json"
        config.write_text(json.dumps({
            "mediaType": SIGNING_CONFIG_MEDIA_TYPE,
            "caUrls": [_service(fulcio_url or UNUSED_FULCIO, 1, since)], "oidcUrls": [],
            "rekorTlogUrls": [_service(v2.url, 2, since)], "tsaUrls": [_service(tsa.timestamp_url, 1, since)],
            "rekorTlogConfig": {"selector": "ANY"}, "tsaConfig": {"selector": "ANY"},
        }, indent=2) + "\n")  # fmt: skip
        sign_args = ["--signing-config", str(config), "--rekor-public-key", str(v2_key),
                     "--timestamp-certificate-chain", str(chain), "--bundle-format", "v3"]  # fmt: skip
    root = keys / "trusted_root.json"
    authority = Authority(tsa.timestamp_url, tsa.authority.chain, since)
    root.write_bytes(trusted_root_json(tlogs=tlogs, timestamp_authorities=[authority]))
    where = f"Rekor v2 log {v2_url} (v3 bundles only)" if v2_url else f"transparency log {log.url}"
    return RehearsalSigning(
        sign_args,
        ["--rekor-public-key", str(rekor_public_key), "--trusted-root", str(root)],
        tsa.timestamp_url,
        v2_url,
        f"timestamp authority {tsa.timestamp_url} (RFC 3161); signing into the {where}",
    )
