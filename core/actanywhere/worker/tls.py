"""TLS for a worker that serves other machines: its certificate and key loaded into a server
context (one line naming the file when they cannot be used), and a self-signed pair for a
quick start (``serve --make-cert``), made with the ``openssl`` command line.

The self-signed certificate is its own CA (hand ``worker.crt`` to clients as their ``ca``);
it names the hosts given plus ``localhost``, 127.0.0.1 and ::1, and passes the strict X.509
checks Python 3.13 makes by default (key usages, critical basic constraints, key ids).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import socket
import ssl
import subprocess
import tempfile

from ..errors import OutputError, SpecError
from .tokens import check_mode

CERT, KEY = "worker.crt", "worker.key"
DAYS = 825  # the longest validity macOS and iOS accept for a TLS server certificate
LOOPBACK = ("localhost", "127.0.0.1", "::1")


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """A TLS 1.2+ server context serving ``cert`` with ``key``; SpecError naming the file."""
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not os.path.isfile(path):
            raise SpecError(f"{flag} {path}: no such file; make a pair with `actanywhere serve "
                            "--make-cert DIR --host NAME` or use your studio CA's")
    check_mode(key, "the private key")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise SpecError(f"--tls-cert {cert} / --tls-key {key}: cannot be used together "
                        f"({getattr(exc, 'reason', None) or exc}); give a PEM certificate and "
                        "its own private key") from None
    return ctx


def names(hosts: list[str]) -> list[str]:
    """The names a certificate for ``hosts`` holds: them (default this machine's names) and
    loopback, each once."""
    given = [h.strip() for h in hosts if h.strip()] or [socket.getfqdn(), socket.gethostname()]
    return list(dict.fromkeys([*given, *LOOPBACK]))


def _san(hosts: list[str]) -> str:
    out = []
    for name in hosts:
        try:
            out.append(f"IP:{ipaddress.ip_address(name)}")
        except ValueError:
            out.append(f"DNS:{name}")
    return ",".join(out)


def make_cert(folder: str, hosts: list[str]) -> tuple[str, str, list[str]]:
    """Write a self-signed certificate (``worker.crt``, 0644) and its key (``worker.key``,
    0600) into ``folder``; (cert, key, names). Existing files are not replaced."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SpecError("--make-cert needs the openssl command line, which is not on PATH; "
                        "install it, or make the pair with your studio's CA")
    folder = os.path.abspath(folder)
    cert, key = os.path.join(folder, CERT), os.path.join(folder, KEY)
    for path in (cert, key):
        if os.path.exists(path):
            raise OutputError(f"{path} exists; remove it or give --make-cert another folder")
    hosts = names(hosts)
    for name in hosts:
        if not name or any(c in name for c in ",/=\n\\") or len(name) > 253:
            raise SpecError(f"--host {name!r}: not a host name or address")
    try:
        os.makedirs(folder, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".make-cert.", dir=folder)  # 0700: the key starts private
    except OSError as exc:
        raise OutputError(f"{folder}: cannot write the certificate there "
                          f"({exc.strerror or exc})") from None
    try:
        tmp_cert, tmp_key = os.path.join(work, CERT), os.path.join(work, KEY)
        os.close(os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        cmd = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
               "ec_paramgen_curve:prime256v1", "-nodes", "-sha256", "-days", str(DAYS),
               "-keyout", tmp_key, "-out", tmp_cert, "-subj", f"/CN={hosts[0]}",
               "-addext", f"subjectAltName={_san(hosts)}",
               "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
               "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
               "-addext", "extendedKeyUsage=serverAuth"]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SpecError(f"openssl could not make the certificate ({exc})") from None
        if run.returncode != 0:
            last = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise SpecError(f"openssl could not make the certificate ({last}); an OpenSSL "
                            "1.1.1 or newer is needed")
        os.chmod(tmp_key, 0o600)
        os.chmod(tmp_cert, 0o644)
        os.replace(tmp_key, key)
        os.replace(tmp_cert, cert)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.chmod(key, 0o600)
    return cert, key, hosts
