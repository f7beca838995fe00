"""RS256 (RSASSA-PKCS1-v1_5 with SHA-256) and a deterministic test RSA key, in pure Python.

Why it exists: the FCM fake must check that a token request's assertion is a JWT signed with
the test service account's key, and neither `cryptography` nor `google-auth` is installed in
the project's environment. RS256 *verification* is one modular exponentiation and a byte
comparison (RFC 8017 §8.2.2); *signing* (so tests can build assertions without google-auth)
is the CRT exponentiation; the key is written as the PKCS#8 PEM a Google service-account
JSON carries, so google-auth (via `cryptography`) loads it when it is installed.

The key is generated from a seeded `random.Random` (never for production: the seed is in the
source), so every run and every machine gets the same 2048-bit key. Generating it takes
about half a second; it is cached per process. Not constant-time, not hardened: test code.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_RSA_OID = bytes.fromhex("06092a864886f70d010101")  # 1.2.840.113549.1.1.1 rsaEncryption
_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % d for d in range(2, int(p**0.5) + 1))]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; `ValueError` on anything else."""
    if not text or any(c not in _B64URL for c in text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class RsaKey:
    n: int
    e: int
    d: int
    p: int
    q: int

    @property
    def size(self) -> int:
        """The modulus length in bytes."""
        return (self.n.bit_length() + 7) // 8

    def _encode(self, message: bytes) -> int:
        t = _SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
        em = b"\x00\x01" + b"\xff" * (self.size - len(t) - 3) + b"\x00" + t
        return int.from_bytes(em, "big")

    def sign(self, message: bytes) -> bytes:
        m = self._encode(message)
        dp, dq = self.d % (self.p - 1), self.d % (self.q - 1)
        qinv = pow(self.q, -1, self.p)
        m1, m2 = pow(m, dp, self.p), pow(m, dq, self.q)
        s = m2 + self.q * ((qinv * (m1 - m2)) % self.p)
        return s.to_bytes(self.size, "big")

    def verify(self, message: bytes, signature: bytes) -> bool:
        if len(signature) != self.size:
            return False
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return False
        return pow(s, self.e, self.n) == self._encode(message)

    def private_pem(self) -> str:
        """PKCS#8 `-----BEGIN PRIVATE KEY-----`, as in a service-account JSON."""
        dp, dq, qinv = self.d % (self.p - 1), self.d % (self.q - 1), pow(self.q, -1, self.p)
        rsa = _seq(*(_int(v) for v in (0, self.n, self.e, self.d, self.p, self.q, dp, dq, qinv)))
        info = _seq(_int(0), _seq(_RSA_OID, b"\x05\x00"), _tlv(0x04, rsa))
        return _pem("PRIVATE KEY", info)

    def public_pem(self) -> str:
        """SubjectPublicKeyInfo `-----BEGIN PUBLIC KEY-----` (for `openssl` cross-checks)."""
        rsa = _seq(_int(self.n), _int(self.e))
        spki = _seq(_seq(_RSA_OID, b"\x05\x00"), _tlv(0x03, b"\x00" + rsa))
        return _pem("PUBLIC KEY", spki)


# -- DER ------------------------------------------------------------------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _int(v: int) -> bytes:
    raw = v.to_bytes(v.bit_length() // 8 + 1, "big")  # one spare byte keeps the sign bit 0
    while len(raw) > 1 and raw[0] == 0 and raw[1] < 0x80:
        raw = raw[1:]
    return _tlv(0x02, raw)


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _pem(label: str, der: bytes) -> str:
    text = base64.b64encode(der).decode("ascii")
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def _read_tlv(data: bytes, pos: int) -> tuple[int, bytes, int]:
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        n = first
    else:
        k = first & 0x7F
        n = int.from_bytes(data[pos : pos + k], "big")
        pos += k
    return tag, data[pos : pos + n], pos + n


def load_private_pem(pem: str) -> RsaKey:
    """Parse a PKCS#8 RSA private key PEM (the subset `private_pem` writes); `ValueError`."""
    try:
        body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
        der = base64.b64decode(body, validate=True)
        tag, info, _ = _read_tlv(der, 0)
        fields: list[bytes] = []
        pos = 0
        while pos < len(info):
            _, content, pos = _read_tlv(info, pos)
            fields.append(content)
        if tag != 0x30 or len(fields) < 3 or not fields[1].startswith(_RSA_OID):
            raise ValueError("not a PKCS#8 RSA key")
        _, rsa, _ = _read_tlv(fields[2], 0)
        ints: list[int] = []
        pos = 0
        while pos < len(rsa):
            _, content, pos = _read_tlv(rsa, pos)
            ints.append(int.from_bytes(content, "big"))
        _, n, e, d, p, q = ints[:6]
        return RsaKey(n=n, e=e, d=d, p=p, q=q)
    except (IndexError, ValueError) as exc:
        raise ValueError(f"cannot read RSA private key: {exc}") from exc


# -- key generation -------------------------------------------------------------------------


def _probably_prime(n: int, rng: random.Random, rounds: int = 12) -> bool:
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        x = pow(rng.randrange(2, n - 2), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _prime(bits: int, rng: random.Random, e: int) -> int:
    while True:
        c = rng.getrandbits(bits) | (3 << (bits - 2)) | 1  # top two bits: n has 2*bits bits
        if any(c % p == 0 for p in _SMALL_PRIMES) or (c - 1) % e == 0:
            continue
        if _probably_prime(c, rng):
            return c


@functools.lru_cache(maxsize=8)
def generate_key(seed: str = "mcrm-fake-service-account", bits: int = 2048) -> RsaKey:
    """A deterministic RSA key for `seed` (same seed, same key, on every machine)."""
    rng = random.Random(hashlib.sha256(seed.encode()).digest())
    e = 65537
    p = _prime(bits // 2, rng, e)
    q = _prime(bits // 2, rng, e)
    while q == p:
        q = _prime(bits // 2, rng, e)
    p, q = max(p, q), min(p, q)
    lam = (p - 1) * (q - 1) // _gcd(p - 1, q - 1)
    return RsaKey(n=p * q, e=e, d=pow(e, -1, lam), p=p, q=q)


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


# -- JWT ------------------------------------------------------------------------------------


def encode_jwt(claims: dict[str, Any], key: RsaKey, headers: dict[str, Any] | None = None) -> str:
    """An RS256 JWT, as google-auth writes one (header `alg`, `typ` and the given extras)."""
    header = {"typ": "JWT", "alg": "RS256", **(headers or {})}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    return signing_input + "." + b64url(key.sign(signing_input.encode("ascii")))


def decode_jwt(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """(header, claims, signing input, signature) of a compact JWS; `ValueError` if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("a JWT has three dot-separated parts")
    header = json.loads(b64url_decode(parts[0]))
    claims = json.loads(b64url_decode(parts[1]))
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise ValueError("JWT header and claims must be JSON objects")
    signature = b64url_decode(parts[2])
    return header, claims, (parts[0] + "." + parts[1]).encode("ascii"), signature
