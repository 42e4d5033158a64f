"""What ``--help`` calls things: the command groups of ``release-vector --help``, the option panels and the
metavars. Tables here, rules in :mod:`pipeline.cli.help`; a command or option nobody listed still gets a
place (its ``rich_help_panel``, else a panel guessed from its name) and a metavar (from its name and type).
"""

from __future__ import annotations

COMMAND_PANELS: dict[str, tuple[str, ...]] = {
    "Release": ("rehearse", "release", "verify-release", "assemble", "push", "pull"),
    "Images": ("sign", "verify"),
    "Attestations": ("attest", "verify-attestation", "attest-blob", "verify-blob-attestation"),
    "Files": ("sign-blob", "verify-blob"),
    "Keys": ("generate-key-pair", "public-key"),
    "Mirror": ("mirror", "export", "import"),
    "Settings": ("config",),
}
"""The order a maintainer meets the commands in; a command not listed goes to its ``rich_help_panel`` or last."""

OTHER_COMMANDS = "Other commands"

OPTIONS_PANEL = "Options"
"""The panel of an option that names none and matches no rule below (``--help`` among them)."""

PANEL_BY_OPTION: dict[str, str] = {
    "--json": "Output",
    "--output": "Output",
    "--outfile": "Output",
    "--output-signature": "Output",
    "--bundle": "Output",
    "--force": "Output",
    "--concurrency": "Registry",
    "--registry-mirror": "Registry",
    "--exclude-image": "Release",
    "--source": "Release",
    "--repository": "Release",
    "--git-revision": "Release",
    "--source-url": "Release",
    "--dry-run": "Release",
    "--bundle-format": "Signing",
    "--recursive": "Signing",
    "--key": "Signing",
    "--annotations": "Signing",
    "--check-reference": "Verification",
    "--ignore-tags": "Verification",
    "--allow-version-mismatch": "Verification",
    "--signature-repository": "Registry",
    "--signing-config": "Transparency log",
    "--timestamp-server-url": "Transparency log",
}
"""Options outside an option group (whose ``panel`` names theirs): the panel their long name puts them in."""

VERIFYING_PANELS = {"Signing": "Verification"}
"""On a command that verifies (``verify*``, ``pull``), ``--key`` and ``-a`` say what must have signed."""

PANEL_BY_PREFIX: tuple[tuple[str, str], ...] = (
    ("--insecure-", "Verification"),
    ("--certificate-", "Verification"),
    ("--registry-", "Registry"),
    ("--rekor-", "Transparency log"),
    ("--tlog-", "Transparency log"),
    ("--fulcio-", "Keyless"),
    ("--github-", "Release target"),
)

METAVAR_BY_OPTION: dict[str, str] = {
    "--key": "KEY",
    "--annotations": "KEY=VALUE",
    "--registry-mirror": "FROM=TO",
    "--repository": "REGISTRY/REPO",
    "--signature-repository": "REGISTRY/REPO",
    "--github-repository": "OWNER/REPO",
    "--exclude-image": "GLOB",
    "--identity-token": "FILE|env://NAME",
    "--bundle-format": "legacy|v3|both",
    "--git-revision": "COMMIT",
    "--version": "VERSION",
    "--tag": "TAG",
    "--certificate-identity": "NAME",
    "--certificate-oidc-issuer": "URL",
    "--release-dir": "DIR",
    "--workdir": "DIR",
    "--config": "FILE",
}
"""Metavars that say what a value is; the rules in ``help.metavar`` cover the rest (``-url``: URL, …)."""

ARGUMENT_METAVARS: dict[str, str] = {
    "images": "IMAGE",
    "reference": "REF",
    "ref": "REF",
    "vector": "FILE",
    "file": "FILE",
    "version": "VERSION",
}

TYPE_METAVARS: dict[str, str] = {"Path": "FILE", "int": "N", "float": "NUMBER", "str": "TEXT", "list[str]": "TEXT"}
