"""A local certificate authority and a server certificate for 127.0.0.1 and
localhost (made with `trustme`), for `paystream up --tls`. Made once in the
data folder and reused; give clients the CA file (curl --cacert)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True, slots=True)
class TlsFiles:
    ca: Path
    certificate: Path
    key: Path


def local_tls(folder: Path) -> TlsFiles:
    files = TlsFiles(folder / "ca.pem", folder / "server.pem", folder / "server-key.pem")
    if all(path.exists() for path in (files.ca, files.certificate, files.key)):
        return files
    folder.mkdir(parents=True, exist_ok=True)
    authority = trustme.CA(organization_name="paystream local CA")
    server = authority.issue_cert("127.0.0.1", "localhost", "::1")
    authority.cert_pem.write_to_path(str(files.ca))
    server.cert_chain_pems[0].write_to_path(str(files.certificate))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(files.certificate), append=True)
    fd = os.open(files.key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(server.private_key_pem.bytes())
    return files
