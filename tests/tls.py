"""A certificate authority of our own for TLS tests on 127.0.0.1: a server certificate and a CA file."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

__all__ = ["TLSFiles", "make_tls_files", "terminate_tls"]


@dataclass(frozen=True)
class TLSFiles:
    """The CA certificate to trust, and the server's certificate chain and key (PEM files)."""

    ca: Path
    chain: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.chain, self.key)
        return context


def make_tls_files(directory: Path) -> TLSFiles:
    """A CA and a server certificate for ``localhost`` and ``127.0.0.1``, signed by it, valid for a day."""
    now = datetime.datetime.now(datetime.UTC)

    def certificate(
        subject: str,
        key: ec.EllipticCurvePrivateKey,
        issuer: x509.Name,
        signer: ec.EllipticCurvePrivateKey,
        ca: bool,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pytest-insight test CA")])
    ca_cert = certificate("pytest-insight test CA", ca_key, ca_name, ca_key, ca=True)
    server_cert = certificate("localhost", server_key, ca_name, ca_key, ca=False)
    files = TLSFiles(directory / "ca.pem", directory / "chain.pem", directory / "key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.chain.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return files


def terminate_tls(files: TLSFiles, upstream: tuple[str, int]) -> tuple[int, threading.Event]:
    """Accept TLS on a free 127.0.0.1 port and relay each connection in plain TCP to ``upstream``.

    Returns:
        The port, and an event that stops accepting once set (the listener is closed).
    """
    listener = socket.create_server(("127.0.0.1", 0))
    context = files.server_context()
    stop = threading.Event()

    def pipe(source: socket.socket, target: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                target.sendall(data)
        with suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def relay(client: socket.socket) -> None:
        try:
            secure = context.wrap_socket(client, server_side=True)
        except (OSError, ssl.SSLError):
            client.close()  # a client that did not trust us
            return
        with secure, socket.create_connection(upstream) as plain:
            back = threading.Thread(target=pipe, args=(plain, secure), daemon=True)
            back.start()
            pipe(secure, plain)
            back.join(30)

    def accept() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=relay, args=(client,), daemon=True).start()

    def close_when_stopped() -> None:
        stop.wait()
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()

    threading.Thread(target=accept, daemon=True).start()
    threading.Thread(target=close_when_stopped, daemon=True).start()
    return listener.getsockname()[1], stop
