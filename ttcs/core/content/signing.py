"""Ed25519 signatures in JWS compact form (RFC 7515 with EdDSA, RFC 8037).

Why JWS: a device maker verifies a token with any JOSE library, or with forty lines of C around
an Ed25519 routine, and the public keys are published as a JWK Set (``GET /keys``). Payloads are
canonical JSON (sorted keys, no spaces, UTF-8), so the hub can rebuild a payload from the
stored content item and check the signature without keeping the token itself.

Two token types:

``ttcs-approval``
    signed with an *approver's* key: the content item's metadata, the SHA-256 and size of its
    media, and the SHA-256 of its text.
``ttcs-render``
    signed with the *hub's render key*: "this audio file is the text-to-speech rendering of the
    approved text", carrying the approval token inside, so a speaker playing a text bulletin
    can check both links of the chain.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ContentAltered

APPROVAL_TYPE = "ttcs-approval"
RENDER_TYPE = "ttcs-render"
STATEMENT_VERSION = 1


def b64u(data: bytes) -> str:
    """Base64url without padding (as JOSE uses it)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8 (no escaping of Vietnamese)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- keys ------------------------------------------------------------------------------------


def new_keypair() -> tuple[bytes, bytes]:
    """A fresh Ed25519 key pair as raw bytes (private 32, public 32)."""
    private = Ed25519PrivateKey.generate()
    return (private.private_bytes_raw(), private.public_key().public_bytes_raw())


def key_id(public_key: bytes) -> str:
    """A short, stable identifier of a public key (first 16 hex digits of its SHA-256)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def jwk(public_key: bytes, kid: str, **extra: Any) -> dict[str, Any]:
    """The public key as a JWK (RFC 8037 OKP/Ed25519)."""
    return {"kty": "OKP", "crv": "Ed25519", "x": b64u(public_key), "kid": kid, "use": "sig",
            "alg": "EdDSA", **extra}


# -- tokens ----------------------------------------------------------------------------------


def _header(kid: str, typ: str) -> str:
    return b64u(canonical({"alg": "EdDSA", "kid": kid, "typ": typ}))


def _signing_input(payload: Mapping[str, Any], kid: str, typ: str) -> bytes:
    return f"{_header(kid, typ)}.{b64u(canonical(dict(payload)))}".encode("ascii")


def sign(payload: Mapping[str, Any], private_key: bytes, kid: str, typ: str) -> str:
    """The detached signature (base64url) of ``payload`` as a JWS of type ``typ``."""
    key = Ed25519PrivateKey.from_private_bytes(private_key)
    return b64u(key.sign(_signing_input(payload, kid, typ)))


def token(payload: Mapping[str, Any], kid: str, typ: str, signature: str) -> str:
    """The compact JWS ``header.payload.signature``."""
    return f"{_signing_input(payload, kid, typ).decode('ascii')}.{signature}"


def signature_valid(payload: Mapping[str, Any], public_key: bytes, kid: str, typ: str,
                    signature: str) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            b64u_decode(signature), _signing_input(payload, kid, typ))
    except (InvalidSignature, ValueError):
        return False
    return True


def _open(compact: str, keys: Mapping[str, bytes]) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        head_b64, body_b64, sig_b64 = compact.split(".")
        header = json.loads(b64u_decode(head_b64))
        payload = json.loads(b64u_decode(body_b64))
    except ValueError as exc:
        raise ContentAltered("the signature token is malformed") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ContentAltered("the signature token is malformed")
    if header.get("alg") != "EdDSA":
        raise ContentAltered(f"unsupported signature algorithm {header.get('alg')!r}")
    public = keys.get(str(header.get("kid")))
    if public is None:
        raise ContentAltered(f"signed with unknown key {header.get('kid')!r}")
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            b64u_decode(sig_b64), f"{head_b64}.{body_b64}".encode("ascii"))
    except (InvalidSignature, ValueError) as exc:
        raise ContentAltered("the signature does not verify") from exc
    return header, payload


def keys_from_jwks(jwks: Mapping[str, Any], role: str | None = None) -> dict[str, bytes]:
    """``kid -> raw public key`` from a JWK Set as ``GET /keys`` serves it."""
    return {k["kid"]: b64u_decode(k["x"]) for k in jwks.get("keys", [])
            if k.get("kty") == "OKP" and k.get("crv") == "Ed25519"
            and (role is None or k.get("ttcs_role") == role)}


def verify_token(compact: str, approver_keys: Mapping[str, bytes],
                 render_keys: Mapping[str, bytes] | None = None, *,
                 sha256: str | None = None, size: int | None = None,
                 text: str | None = None) -> dict[str, Any]:
    """Check a token the way a device or plugin should; return the approval statement.

    ``sha256``/``size``: of the file the device downloaded; ``text``: of a text bulletin it
    shows. A render token needs ``render_keys`` and must carry a valid approval token for the
    same content and text. Raises :class:`~ttcs.core.errors.ContentAltered` on any mismatch.
    """
    render_keys = render_keys or {}
    header, payload = _open(compact, {**render_keys, **approver_keys})
    if header.get("typ") == RENDER_TYPE:
        if header.get("kid") not in render_keys:
            raise ContentAltered("render token signed by a key that is not a render key")
        inner_header, statement = _open(str(payload.get("approval", "")), approver_keys)
        if inner_header.get("typ") != APPROVAL_TYPE:
            raise ContentAltered("the render token does not carry an approval token")
        if (statement.get("content_id") != payload.get("content_id")
                or not payload.get("text_sha256")
                or statement.get("text_sha256") != payload.get("text_sha256")):
            raise ContentAltered("the rendering is of other content or other text than approved")
        media = payload.get("media") or {}
    elif header.get("typ") == APPROVAL_TYPE:
        if header.get("kid") not in approver_keys:
            raise ContentAltered("approval token signed by a key that is not an approver's")
        statement = payload
        media = statement.get("media") or {}
    else:
        raise ContentAltered(f"unknown token type {header.get('typ')!r}")
    if sha256 is not None and media.get("sha256") != sha256:
        raise ContentAltered("the media file is not the one that was approved (sha256 differs)")
    if size is not None and media.get("size") != size:
        raise ContentAltered("the media file is not the one that was approved (size differs)")
    if text is not None and statement.get("text_sha256") != sha256_text(text):
        raise ContentAltered("the text is not the one that was approved")
    return statement

