"""Checking a clear-signed S/MIME document (SROS2's ``governance.p7s`` and ``permissions.p7s``) against a CA.

``cryptography`` signs PKCS#7 but has no API to verify it, so this reads the detached SignedData itself
(a small DER reader) and checks, as OpenSSL's ``smime -verify`` does for these files: the signed part's
SHA-256 equals the signed ``messageDigest`` attribute, the signature over the signed attributes verifies with
the signer's key, and the signer is the CA or was issued by it.
"""

from __future__ import annotations

import base64
import email
import hashlib
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from mobility_twin.security.errors import SecurityError

OID_SIGNED_DATA = "1.2.840.113549.1.7.2"
OID_DATA = "1.2.840.113549.1.7.1"
OID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
OID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"


@dataclass(frozen=True)
class Tlv:
    tag: int
    start: int  # offset of the tag byte
    body: int  # offset of the contents
    end: int  # offset after the contents

    def raw(self, data: bytes) -> bytes:
        return data[self.start:self.end]


def _read(data: bytes, pos: int) -> Tlv:
    if pos + 2 > len(data):
        raise SecurityError("truncated DER")
    tag, length, body = data[pos], data[pos + 1], pos + 2
    if tag & 0x1F == 0x1F:
        raise SecurityError("unsupported DER tag")
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4:
            raise SecurityError("unsupported DER length")
        length = int.from_bytes(data[body:body + count], "big")
        body += count
    if body + length > len(data):
        raise SecurityError("truncated DER")
    return Tlv(tag, pos, body, body + length)


def _children(data: bytes, tlv: Tlv) -> list[Tlv]:
    out, pos = [], tlv.body
    while pos < tlv.end:
        child = _read(data, pos)
        out.append(child)
        pos = child.end
    return out


def _oid(data: bytes, tlv: Tlv) -> str:
    if tlv.tag != 0x06:
        raise SecurityError("expected an OBJECT IDENTIFIER")
    raw = data[tlv.body:tlv.end]
    first, parts, value = raw[0], [], 0
    parts += [first // 40, first % 40] if first < 80 else [2, first - 80]
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


def _split_smime(document: bytes) -> tuple[bytes, bytes]:
    """(the signed MIME part as signed: canonical CRLF, the DER signature) of a multipart/signed message."""
    message = email.message_from_bytes(document)
    boundary = message.get_param("boundary") if message.get_content_type() == "multipart/signed" else None
    if not boundary:
        raise SecurityError("not a multipart/signed S/MIME document")
    text = document.replace(b"\r\n", b"\n")
    delimiter = b"\n--" + str(boundary).encode()
    chunks = (b"\n" + text).split(delimiter)
    if len(chunks) < 4:
        raise SecurityError("S/MIME document without a signed part and a signature part")
    signed = chunks[1].split(b"\n", 1)[1]  # drop the rest of the delimiter line
    signature_part = email.message_from_bytes(chunks[2].split(b"\n", 1)[1])
    if signature_part.get_content_type() not in ("application/x-pkcs7-signature", "application/pkcs7-signature"):
        raise SecurityError(f"unexpected signature part {signature_part.get_content_type()}")
    der = base64.b64decode(re.sub(rb"\s+", b"", signature_part.get_payload(decode=False).encode()))
    return signed.replace(b"\n", b"\r\n"), der


def signed_content(document: bytes) -> bytes:
    """The document that was signed (the text/plain part's body, with its original line ends as LF)."""
    signed, _ = _split_smime(document)
    return signed.split(b"\r\n\r\n", 1)[1].replace(b"\r\n", b"\n")


def verify_smime(document: bytes, ca_cert: x509.Certificate) -> bytes:
    """Verify a clear-signed S/MIME ``document`` against ``ca_cert``; the signed content, or SecurityError."""
    signed, der = _split_smime(document)
    try:
        content_info = _read(der, 0)
        ci = _children(der, content_info)
        if _oid(der, ci[0]) != OID_SIGNED_DATA:
            raise SecurityError("the signature is not PKCS#7 SignedData")
        signed_data = _read(der, ci[1].body)  # [0] EXPLICIT
        fields = _children(der, signed_data)
        signer_infos = _children(der, fields[-1])
        if len(signer_infos) != 1:
            raise SecurityError(f"expected one signer, found {len(signer_infos)}")
        info = _children(der, signer_infos[0])
        attrs = next((f for f in info if f.tag == 0xA0), None)
        if attrs is None:
            raise SecurityError("the signature has no signed attributes")
        digest_alg = _oid(der, _children(der, info[2])[0])
        signature = der[info[-1].body:info[-1].end]
    except (IndexError, ValueError) as err:
        raise SecurityError(f"malformed PKCS#7 signature: {err}") from None
    if digest_alg != OID_SHA256:
        raise SecurityError(f"unexpected digest algorithm {digest_alg}")
    values: dict[str, bytes] = {}
    for attr in _children(der, attrs):
        oid_tlv, set_tlv = _children(der, attr)
        value = _children(der, set_tlv)[0]
        values[_oid(der, oid_tlv)] = value.raw(der)
    expected = hashlib.sha256(signed).digest()
    digest = values.get(OID_MESSAGE_DIGEST)
    if digest is None or _read(digest, 0).tag != 0x04 or digest[_read(digest, 0).body:] != expected:
        raise SecurityError("the signed content does not match the signature's message digest (altered document)")
    content_type = values.get(OID_CONTENT_TYPE)
    if content_type is None or _oid(content_type, _read(content_type, 0)) != OID_DATA:
        raise SecurityError("the signature's content type is not data")
    to_verify = b"\x31" + der[attrs.start + 1:attrs.end]  # signed attributes as a SET, as they were signed
    certs = pkcs7.load_der_pkcs7_certificates(der)
    candidates = [c for c in certs] or [ca_cert]
    for signer in candidates:
        try:
            key = signer.public_key()
            if isinstance(key, ec.EllipticCurvePublicKey):
                key.verify(signature, to_verify, ec.ECDSA(hashes.SHA256()))
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, to_verify, padding.PKCS1v15(), hashes.SHA256())
            else:
                continue
        except InvalidSignature:
            continue
        if signer == ca_cert:
            return signed_content(document)
        try:
            signer.verify_directly_issued_by(ca_cert)
        except (ValueError, TypeError, InvalidSignature):
            raise SecurityError(f"signed by {signer.subject.rfc4514_string()}, which the CA "
                                f"{ca_cert.subject.rfc4514_string()} did not issue") from None
        return signed_content(document)
    raise SecurityError("the signature does not verify with the signer's key")
