"""The project's certificate authority: one CA key signs every host's TLS certificate and every SROS2 document.

Keys are ECDSA on prime256v1 (what DDS Security asks for, and what OpenSSL 1.1.1 in the Fast DDS wheels
speaks for TLS). Host certificates carry both TLS purposes (server and client), since on a Fast DDS TCP link
either end may open the connection, and name the host (and its address, when known) as subject
alternative names.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mobility_twin.security.errors import SecurityError
from mobility_twin.security.files import make_dir, write_file

ORGANIZATION = "mobility_twin"
CA_CERT = "ca.cert.pem"
CA_KEY = "ca.key.pem"
MAX_DAYS = 36500


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_days(days: int) -> int:
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise SecurityError(f"--days {days!r}: a certificate's validity must be 1..{MAX_DAYS} days")
    return days


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def load_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(Path(path).read_bytes())
    except (OSError, ValueError) as err:
        raise SecurityError(f"cannot read the certificate {path}: {err}") from None


@dataclass(frozen=True)
class Issued:
    """A key and the certificate the CA issued for it."""

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "mobility_twin CA", *, days: int = 3650) -> CertificateAuthority:
        check_days(days)
        key = new_key()
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    @classmethod
    def load(cls, folder: Path) -> CertificateAuthority:
        """The CA saved by :meth:`save` in ``folder`` (``ca.cert.pem`` and ``ca.key.pem``)."""
        cert_path, key_path = Path(folder) / CA_CERT, Path(folder) / CA_KEY
        cert = load_cert(cert_path)
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as err:
            raise SecurityError(f"cannot read the CA key {key_path}: {err}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.public_key() != cert.public_key():
            raise SecurityError(f"{key_path} is not the key of the CA certificate {cert_path}")
        return cls(key, cert)

    def save(self, folder: Path) -> tuple[Path, Path]:
        """Write ``ca.cert.pem`` (0644) and ``ca.key.pem`` (0600) into ``folder`` (made 0700)."""
        make_dir(Path(folder), private=True)
        return (write_file(Path(folder) / CA_CERT, cert_pem(self.cert)),
                write_file(Path(folder) / CA_KEY, key_pem(self.key), secret=True))

    def issue(self, common_name: str, *, days: int, dns_names: tuple[str, ...] = (),
              ip_addresses: tuple[str, ...] = (), tls: bool = True) -> Issued:
        """A new key and its certificate: subject ``O=mobility_twin, CN=common_name`` for TLS, ``CN=common_name``
        for an SROS2 identity.

        ``tls``: the certificate is for a TLS link (server and client authentication, the host's names
        and addresses as subject alternative names); otherwise it is a DDS Security identity (SROS2).
        """
        check_days(days)
        key = new_key()
        now = _now()
        not_after = min(now + dt.timedelta(days=days), self.cert.not_valid_after_utc)
        # a DDS Security identity is named by its common name alone, as SROS2 names it (the permissions'
        # subject_name must repeat the certificate's subject exactly)
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if tls:
            subject.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION))
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        if tls:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False)
            names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
            names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
            if names:
                builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return Issued(key, builder.sign(self.key, hashes.SHA256()))

    def sign_smime(self, content: bytes) -> bytes:
        """``content`` signed as SROS2 signs governance and permissions files: clear-signed S/MIME
        (multipart/signed, text/plain, SHA-256), the CA certificate included."""
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(content)
            .add_signer(self.cert, self.key, hashes.SHA256())
            .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.Text, pkcs7.PKCS7Options.DetachedSignature])
        )


def verify_issued(cert: x509.Certificate, ca_cert: x509.Certificate) -> None:
    """Raise :class:`SecurityError` unless ``cert`` was signed by ``ca_cert`` and is valid now."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as err:
        raise SecurityError(f"certificate {cert.subject.rfc4514_string()} was not issued by "
                            f"{ca_cert.subject.rfc4514_string()}: {err or 'bad signature'}") from None
    now = _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SecurityError(f"certificate {cert.subject.rfc4514_string()} is not valid now "
                            f"({cert.not_valid_before_utc} .. {cert.not_valid_after_utc})")
