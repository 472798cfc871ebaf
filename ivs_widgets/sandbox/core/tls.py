"""TLS for a workshop sandbox: a private certificate authority and a server certificate it signs.

Attendees' machines do not trust a laptop's self-made certificate. So the sandbox keeps one CA
(stored with the state, so its fingerprint stays the same across restarts) and signs a fresh server
certificate for the machine's current names and addresses at every start. An attendee downloads the
CA (``GET /workshop/certificate``), checks its SHA-256 fingerprint against the one the presenter
shared, and from then on TLS is verified normally, host name included: the same trust-on-first-use
with a fingerprint check that SSH offers.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ivs_widgets.protocol import formats

#: Server certificates are re-issued at every start; a long validity only matters for the CA.
CA_DAYS, SERVER_DAYS = 3650, 30


@dataclass(frozen=True)
class Certificate:
    """What a TLS sandbox serves: its certificate chain and key, and the CA attendees should trust."""

    chain_pem: bytes
    key_pem: bytes
    #: What ``GET /workshop/certificate`` hands out (our CA, or the chain of a certificate you gave).
    trust_pem: bytes

    @property
    def fingerprint(self) -> str:
        return formats.fingerprint(self.trust_pem)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only; the key lives on disk for the blink of an eye.
        with tempfile.TemporaryDirectory(prefix="ivs-sandbox-tls-") as folder:
            chain, key = Path(folder, "chain.pem"), Path(folder, "key.pem")
            chain.write_bytes(self.chain_pem)
            key.touch(mode=0o600)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(chain, key)
        return context


def new_ca_pem() -> bytes:
    """A fresh CA certificate and its private key, in one PEM (stored by ``State.remember``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"ivs-sandbox workshop CA ({socket.gethostname()})")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM) + _key_pem(key)


def issue(ca_pem: bytes, hosts: Iterable[str]) -> Certificate:
    """A server certificate for ``hosts`` (names or IP addresses), signed by the CA in ``ca_pem``."""
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ivs-sandbox")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_only = ca_cert.public_bytes(serialization.Encoding.PEM)
    return Certificate(cert.public_bytes(serialization.Encoding.PEM) + ca_only, _key_pem(key), ca_only)


def from_files(certfile: Path, keyfile: Path) -> Certificate:
    """A certificate you already have (from your CA, mkcert …): attendees are handed its chain."""
    chain = Path(certfile).read_bytes()
    return Certificate(chain, Path(keyfile).read_bytes(), chain)


def machine_hosts(bind_host: str) -> list[str]:
    """Names and addresses attendees may use to reach this machine: put them all in the certificate."""
    hosts = ["localhost", "127.0.0.1", "::1", socket.gethostname()]
    if bind_host not in ("", "0.0.0.0", "::"):
        hosts.append(bind_host)
    hosts.append(lan_address())
    try:
        hosts += [str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None)]
    except OSError:
        pass
    return [h.split("%")[0] for h in dict.fromkeys(hosts) if h]


def lan_address() -> str:
    """This machine's address on its default route (what attendees on the same network use).

    Connecting a UDP socket sends nothing; it only asks the kernel which address would be used.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere for real
            return str(probe.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
