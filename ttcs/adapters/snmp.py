"""SNMP manager side shared by every SNMP plugin: v2c and v3 (USM), GET/GETNEXT/GETBULK/SET.

:class:`SnmpManager` (one per process, from ``Transports.snmp()``) sends requests over pysnmp
7's asyncio engine. Requests to one agent (host and port) never overlap: each waits for the
previous answer, so a slow transmitter sees one request at a time and the retry timer of one
request is never eaten by another. Each request has the target's own timeout and retry count.

Every pysnmp error indication and every PDU error-status becomes one of the hub's errors here
and nowhere else (see :func:`_raise_for_indication`, :func:`_raise_for_status`). Values come back
as :class:`Varbind` with plain Python values; the typed accessors raise :class:`ProtocolError`
when an agent answers with the wrong type, so a driver never touches a pysnmp type.

One pysnmp engine serves all v2c targets; v3 targets get one engine per credential set, because
pysnmp keeps USM users by name per engine and two agents with the same user name but different
keys would otherwise race for one table row.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import SecretStr

from ..aio import wait_for
from ..core.errors import (
    AuthFailed,
    CommandRejected,
    DeviceError,
    DeviceNotReady,
    DeviceTimeout,
    DeviceUnreachable,
    ProtocolError,
)

Oid = tuple[int, ...]
Value = int | bytes | Oid | str | None


class SnmpVersion(StrEnum):
    V2C = "2c"
    V3 = "3"


class AuthProtocol(StrEnum):
    """USM authentication protocols (RFC 3414, RFC 7860)."""

    NONE = "none"
    MD5 = "md5"
    SHA = "sha"
    SHA224 = "sha224"
    SHA256 = "sha256"
    SHA384 = "sha384"
    SHA512 = "sha512"


class PrivProtocol(StrEnum):
    """USM privacy protocols (RFC 3414, RFC 3826)."""

    NONE = "none"
    DES = "des"
    AES = "aes"  # AES-128-CFB
    AES192 = "aes192"
    AES256 = "aes256"


class SnmpType(StrEnum):
    """Syntax of a value to SET (the letters ``snmpset`` uses in brackets)."""

    INTEGER = "integer"  # i
    UNSIGNED = "unsigned"  # u (Unsigned32 / Gauge32)
    OCTETS = "octets"  # s / x
    OID = "oid"  # o
    TIMETICKS = "timeticks"  # t


@dataclass(frozen=True)
class SnmpCredentials:
    """How to authenticate to an agent. Keys and communities are secrets."""

    version: SnmpVersion = SnmpVersion.V2C
    community: SecretStr | None = None
    user: str | None = None
    auth_protocol: AuthProtocol = AuthProtocol.NONE
    auth_key: SecretStr | None = None
    priv_protocol: PrivProtocol = PrivProtocol.NONE
    priv_key: SecretStr | None = None
    context: str = ""

    def __post_init__(self) -> None:
        if self.version is SnmpVersion.V2C and self.community is None:
            raise ValueError("SNMPv2c needs a community")
        if self.version is SnmpVersion.V3:
            if not self.user:
                raise ValueError("SNMPv3 needs a user name")
            if (self.auth_protocol is AuthProtocol.NONE) != (self.auth_key is None):
                raise ValueError("an SNMPv3 auth protocol needs an auth key and vice versa")
            if (self.priv_protocol is PrivProtocol.NONE) != (self.priv_key is None):
                raise ValueError("an SNMPv3 privacy protocol needs a privacy key and vice versa")
            if self.priv_protocol is not PrivProtocol.NONE \
                    and self.auth_protocol is AuthProtocol.NONE:
                raise ValueError("SNMPv3 privacy needs authentication too")

    @classmethod
    def v2c(cls, community: str | SecretStr) -> SnmpCredentials:
        secret = community if isinstance(community, SecretStr) else SecretStr(community)
        return cls(SnmpVersion.V2C, community=secret)

    def fingerprint(self) -> str:
        """A digest naming this credential set (for choosing an engine); never the secrets."""
        parts = [self.version.value, self.user or "", self.auth_protocol.value,
                 _reveal(self.auth_key), self.priv_protocol.value, _reveal(self.priv_key)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]

    def describe(self) -> str:
        """For messages: version and user, no secret."""
        if self.version is SnmpVersion.V2C:
            return "SNMPv2c"
        level = ("authPriv" if self.priv_protocol is not PrivProtocol.NONE else
                 "authNoPriv" if self.auth_protocol is not AuthProtocol.NONE else "noAuthNoPriv")
        return f"SNMPv3 user '{self.user}' ({level})"


def _reveal(secret: SecretStr | None) -> str:
    return secret.get_secret_value() if secret is not None else ""


@dataclass(frozen=True)
class SnmpTarget:
    """One agent: address, credentials, per-request timeout and retries."""

    host: str
    credentials: SnmpCredentials
    port: int = 161
    timeout: float = 2.0
    retries: int = 1

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Varbind:
    """One name and value from an agent, with the value as plain Python.

    ``type`` is the SMI syntax seen on the wire (``Integer32``, ``OctetString``, ``Gauge32``,
    ``Counter32``, ``Counter64``, ``TimeTicks``, ``ObjectIdentifier``, ``IpAddress``,
    ``Opaque``) or one of the exceptions ``noSuchObject``, ``noSuchInstance``, ``endOfMibView``
    (value ``None``).
    """

    oid: Oid
    type: str
    value: Value

    @property
    def missing(self) -> bool:
        return self.value is None

    def _wrong(self, wanted: str) -> ProtocolError:
        shown = repr(self.value)[:40]
        return ProtocolError(f"{_dotted(self.oid)}: expected {wanted}, the agent answered "
                             f"{self.type} {shown}")

    def integer(self) -> int:
        """The value of an integer syntax (Integer32, Unsigned32/Gauge32, Counter, TimeTicks)."""
        if self.type not in _INTEGER_TYPES or not isinstance(self.value, int):
            raise self._wrong("an integer")
        return self.value

    def octets(self) -> bytes:
        if self.type != "OctetString" or not isinstance(self.value, bytes):
            raise self._wrong("an OCTET STRING")
        return self.value

    def text(self) -> str:
        """An OCTET STRING read as UTF-8 text (DisplayString); undecodable bytes are refused."""
        try:
            return self.octets().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"{_dotted(self.oid)}: not UTF-8 text: "
                                f"{self.octets()[:40]!r}") from exc

    def object_id(self) -> Oid:
        if self.type != "ObjectIdentifier" or not isinstance(self.value, tuple):
            raise self._wrong("an OBJECT IDENTIFIER")
        return self.value


_INTEGER_TYPES = frozenset({"Integer32", "Gauge32", "Counter32", "Counter64", "TimeTicks"})


def parse_oid(text: str | Oid) -> Oid:
    """``"1.3.6.1.2.1.1.3.0"`` (leading dot allowed) as a tuple; tuples pass through."""
    if isinstance(text, tuple):
        return text
    try:
        return tuple(int(p) for p in text.strip().lstrip(".").split("."))
    except ValueError as exc:
        raise ValueError(f"'{text}' is not a numeric OID") from exc


def _dotted(oid: Oid) -> str:
    return ".".join(str(p) for p in oid)


# -- error boundary ---------------------------------------------------------------------------

#: error-status values that mean "you may not": the community/user lacks the right
_NO_ACCESS = frozenset({"noAccess", "notWritable", "authorizationError", "readOnly",
                        "noCreation"})
#: error-status values that mean "not like that": the value or its type is refused
_BAD_VALUE = frozenset({"wrongType", "wrongLength", "wrongEncoding", "wrongValue", "badValue",
                        "inconsistentValue", "inconsistentName", "noSuchName"})
#: error indications that mean the agent refused who we are (SNMPv3 USM reports)
_AUTH_INDICATIONS = frozenset({"WrongDigest", "UnknownUserName", "AuthenticationFailure",
                               "AuthenticationError", "DecryptionError",
                               "UnsupportedSecurityLevel", "UnknownSecurityName",
                               "NotInTimeWindow", "UnknownCommunityName", "NoEncryption",
                               "NoAuthentication", "UnsupportedAuthProtocol",
                               "UnsupportedPrivProtocol"})


def _raise_for_indication(what: str, target: SnmpTarget, indication: Any,
                          garbage: int) -> None:
    """Turn a pysnmp error indication (an exception instance it hands back) into ours."""
    name = type(indication).__name__
    text = str(indication)
    where = f"{what} ({target.address})"
    if name == "RequestTimedOut":
        if garbage:
            raise ProtocolError(f"{where}: the agent answered {garbage} datagram(s) that are "
                                "not SNMP")
        hint = (" — on SNMPv2c a wrong community looks the same: agents drop it silently"
                if target.credentials.version is SnmpVersion.V2C else "")
        raise DeviceTimeout(f"{where}: no answer after {target.retries + 1} tries of "
                            f"{target.timeout:g} s{hint}")
    if name in _AUTH_INDICATIONS:
        raise AuthFailed(f"{where}: {target.credentials.describe()} refused: {text}")
    if name in ("ParseError", "DeserializationError", "SerializationError", "InvalidMsg",
                "DataMismatch", "EmptyResponse", "OidNotIncreasing", "TooBig",
                "EngineIDMismatch", "UnknownPDUHandler", "UnsupportedPDUtype"):
        raise ProtocolError(f"{where}: {text}")
    raise DeviceUnreachable(f"{where}: {text}")


def _raise_for_status(what: str, target: SnmpTarget, status: str, index: int,
                      oids: Sequence[Oid]) -> None:
    """Turn a PDU error-status into ours (index is 1-based into the request's varbinds)."""
    culprit = f" at {_dotted(oids[index - 1])}" if 0 < index <= len(oids) else ""
    where = f"{what} ({target.address}): agent answered {status}{culprit}"
    if status in _NO_ACCESS:
        raise CommandRejected(f"{where} — {target.credentials.describe()} may not do this "
                              "(read-only community or view?)", code="snmp_no_access")
    if status in _BAD_VALUE:
        raise CommandRejected(where, code=f"snmp_{status}")
    if status == "resourceUnavailable":
        raise DeviceNotReady(where)
    raise ProtocolError(where)  # genErr, tooBig, commitFailed, undoFailed


@contextmanager
def _map_snmp_errors(what: str, target: SnmpTarget) -> Iterator[None]:
    """Exceptions pysnmp raises (rather than hands back) while doing ``what``."""
    from pysnmp.error import PySnmpError
    from pysnmp.smi.error import SmiError

    try:
        yield
    except DeviceError:
        raise
    except TimeoutError as exc:
        raise DeviceTimeout(f"{what} ({target.address}): timed out") from exc
    except OSError as exc:
        raise DeviceUnreachable(f"{what} ({target.address}): {exc.strerror or exc}") from exc
    except (SmiError, PySnmpError) as exc:
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        if "address" in message.lower():
            raise DeviceUnreachable(f"{what} ({target.address}): {message}") from exc
        raise ProtocolError(f"{what} ({target.address}): {message}") from exc
    except (ValueError, TypeError) as exc:  # pyasn1 refusing a value it decoded or encodes
        raise ProtocolError(f"{what} ({target.address}): {exc}") from exc


# -- the manager ------------------------------------------------------------------------------


class SnmpManager:
    """Sends SNMP requests for every driver of the process (see the module docstring)."""

    def __init__(self) -> None:
        self._engines: dict[str, Any] = {}  # pysnmp SnmpEngine by credential set
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._targets: dict[tuple[str, int, float, int], Any] = {}
        self.requests = 0

    @classmethod
    async def create(cls) -> SnmpManager:
        return cls()

    async def close(self) -> None:
        for engine in self._engines.values():
            with contextlib.suppress(Exception):  # a half-open engine: nothing to close
                engine.close_dispatcher()
        self._engines.clear()
        self._targets.clear()

    # -- requests -----------------------------------------------------------------------------

    async def get(self, target: SnmpTarget, oids: Sequence[Oid], *,
                  what: str = "SNMP GET") -> list[Varbind]:
        """GET ``oids``; missing ones come back with ``missing`` set (noSuchObject/Instance)."""
        from pysnmp.hlapi.v3arch.asyncio import get_cmd

        return await self._request(get_cmd, target, [(o, None) for o in oids], what)

    async def get_next(self, target: SnmpTarget, oids: Sequence[Oid], *,
                       what: str = "SNMP GETNEXT") -> list[Varbind]:
        from pysnmp.hlapi.v3arch.asyncio import next_cmd

        return await self._request(next_cmd, target, [(o, None) for o in oids], what)

    async def get_bulk(self, target: SnmpTarget, oids: Sequence[Oid], *,
                       non_repeaters: int = 0, max_repetitions: int = 10,
                       what: str = "SNMP GETBULK") -> list[Varbind]:
        from pysnmp.hlapi.v3arch.asyncio import bulk_cmd

        async def bulk(engine: Any, auth: Any, transport: Any, context: Any, *varbinds: Any,
                       **options: Any) -> Any:
            return await bulk_cmd(engine, auth, transport, context, non_repeaters,
                                  max_repetitions, *varbinds, **options)

        return await self._request(bulk, target, [(o, None) for o in oids], what)

    async def walk(self, target: SnmpTarget, root: Oid, *, max_repetitions: int = 16,
                   what: str = "SNMP walk") -> list[Varbind]:
        """Every object under ``root``, in order, with GETBULK; an agent whose OIDs do not
        increase is refused (:class:`ProtocolError`) instead of looping forever."""
        found: list[Varbind] = []
        cursor = root
        for _ in range(10_000):
            batch = await self.get_bulk(target, [cursor], max_repetitions=max_repetitions,
                                        what=what)
            for vb in batch:
                if vb.type == "endOfMibView" or vb.oid[:len(root)] != root:
                    return found
                if vb.oid <= cursor:
                    raise ProtocolError(f"{what} ({target.address}): OID "
                                        f"{_dotted(vb.oid)} does not follow {_dotted(cursor)}")
                found.append(vb)
                cursor = vb.oid
            if not batch:
                return found
        raise ProtocolError(f"{what} ({target.address}): more than 10000 rounds under "
                            f"{_dotted(root)}")

    async def set(self, target: SnmpTarget, values: Sequence[tuple[Oid, SnmpType, Any]], *,
                  what: str = "SNMP SET") -> list[Varbind]:
        """SET every ``(oid, type, value)`` in one PDU (the agent applies all or none)."""
        from pysnmp.hlapi.v3arch.asyncio import set_cmd

        return await self._request(set_cmd, target,
                                   [(oid, _encode(kind, value)) for oid, kind, value in values],
                                   what)

    # -- machinery ----------------------------------------------------------------------------

    async def _request(self, command: Any, target: SnmpTarget,
                       varbinds: list[tuple[Oid, Any]], what: str) -> list[Varbind]:
        from pysnmp.hlapi.v3arch.asyncio import ContextData, ObjectIdentity, ObjectType

        lock = self._locks.setdefault((target.host, target.port), asyncio.Lock())
        # pysnmp retries on its own; this outer bound only guards against a stuck engine.
        bound = target.timeout * (target.retries + 1) + 2.0
        async with lock:
            with _map_snmp_errors(what, target):
                engine = self._engine(target.credentials)
                transport = await self._target(target)
                auth = _auth_data(target.credentials)
                peer = (transport.transport_address[0], int(transport.transport_address[1]))
                garbage_before = _garbage(engine, peer)
                objects = [ObjectType(ObjectIdentity(oid)) if value is None
                           else ObjectType(ObjectIdentity(oid), value) for oid, value in varbinds]
                self.requests += 1
                indication, status, index, answer = await wait_for(
                    command(engine, auth, transport,
                            ContextData(contextName=target.credentials.context), *objects,
                            lookupMib=False), bound)
                garbage = _garbage(engine, peer) - garbage_before
                if indication:
                    _raise_for_indication(what, target, indication, garbage)
                if status and int(status):
                    _raise_for_status(what, target, status.prettyPrint(), int(index),
                                      [oid for oid, _ in varbinds])
                return [_decode(name, value) for name, value in answer]

    def _engine(self, credentials: SnmpCredentials) -> Any:
        from pysnmp.hlapi.v3arch.asyncio import SnmpEngine

        key = "v2c" if credentials.version is SnmpVersion.V2C else credentials.fingerprint()
        engine = self._engines.get(key)
        if engine is None:
            engine = self._engines[key] = SnmpEngine()
        return engine

    async def _target(self, target: SnmpTarget) -> Any:
        key = (target.host, target.port, target.timeout, target.retries)
        found = self._targets.get(key)
        if found is None:
            found = await _watched_target_class().create(
                (target.host, target.port), timeout=target.timeout, retries=target.retries)
            self._targets[key] = found
        return found


def _garbage(engine: Any, peer: tuple[str, int]) -> int:
    """Datagrams from ``peer`` that the engine's socket received and were not SNMP."""
    from pysnmp.carrier.asyncio.dgram import udp
    from pysnmp.entity import config

    transport = config.get_transport(engine, udp.DOMAIN_NAME)
    counts = getattr(transport, "garbage", None)
    return int(counts[peer]) if counts is not None else 0


def _auth_data(credentials: SnmpCredentials) -> Any:
    from pysnmp.hlapi.v3arch.asyncio import CommunityData, UsmUserData

    if credentials.version is SnmpVersion.V2C:
        return CommunityData(_reveal(credentials.community), mpModel=1)  # noqa: S508 - v2c asked
    return UsmUserData(credentials.user or "",
                       authKey=_reveal(credentials.auth_key) or None,
                       privKey=_reveal(credentials.priv_key) or None,
                       authProtocol=_auth_protocol(credentials.auth_protocol),
                       privProtocol=_priv_protocol(credentials.priv_protocol))


def _auth_protocol(protocol: AuthProtocol) -> Any:
    from pysnmp.hlapi.v3arch.asyncio import auth

    return {AuthProtocol.NONE: auth.USM_AUTH_NONE, AuthProtocol.MD5: auth.USM_AUTH_HMAC96_MD5,
            AuthProtocol.SHA: auth.USM_AUTH_HMAC96_SHA,
            AuthProtocol.SHA224: auth.USM_AUTH_HMAC128_SHA224,
            AuthProtocol.SHA256: auth.USM_AUTH_HMAC192_SHA256,
            AuthProtocol.SHA384: auth.USM_AUTH_HMAC256_SHA384,
            AuthProtocol.SHA512: auth.USM_AUTH_HMAC384_SHA512}[protocol]


def _priv_protocol(protocol: PrivProtocol) -> Any:
    from pysnmp.hlapi.v3arch.asyncio import auth

    return {PrivProtocol.NONE: auth.USM_PRIV_NONE, PrivProtocol.DES: auth.USM_PRIV_CBC56_DES,
            PrivProtocol.AES: auth.USM_PRIV_CFB128_AES,
            PrivProtocol.AES192: auth.USM_PRIV_CFB192_AES,
            PrivProtocol.AES256: auth.USM_PRIV_CFB256_AES}[protocol]


def _encode(kind: SnmpType, value: Any) -> Any:
    from pysnmp.proto import rfc1902

    try:
        if kind is SnmpType.INTEGER:
            return rfc1902.Integer32(int(value))
        if kind is SnmpType.UNSIGNED:
            return rfc1902.Unsigned32(int(value))
        if kind is SnmpType.OCTETS:
            return rfc1902.OctetString(value.encode() if isinstance(value, str) else bytes(value))
        if kind is SnmpType.OID:
            return rfc1902.ObjectIdentifier(parse_oid(value))
        return rfc1902.TimeTicks(int(value))
    except Exception as exc:  # pyasn1 range checks raise their own errors
        raise CommandRejected(f"cannot encode {value!r} as {kind.value}: {exc}",
                              code="snmp_bad_value") from exc


def _decode(name: Any, value: Any) -> Varbind:
    """A pysnmp (name, value) pair as a :class:`Varbind` of plain values."""
    from pyasn1.type import univ
    from pysnmp.proto import rfc1902, rfc1905

    oid = tuple(int(p) for p in name)
    if isinstance(value, rfc1905.NoSuchObject):
        return Varbind(oid, "noSuchObject", None)
    if isinstance(value, rfc1905.NoSuchInstance):
        return Varbind(oid, "noSuchInstance", None)
    if isinstance(value, rfc1905.EndOfMibView):
        return Varbind(oid, "endOfMibView", None)
    for cls, label in ((rfc1902.Counter64, "Counter64"), (rfc1902.Counter32, "Counter32"),
                       (rfc1902.Gauge32, "Gauge32"), (rfc1902.TimeTicks, "TimeTicks")):
        if isinstance(value, cls):
            return Varbind(oid, label, int(value))
    if isinstance(value, rfc1902.IpAddress):
        return Varbind(oid, "IpAddress", ".".join(str(b) for b in value.asOctets()))
    if isinstance(value, rfc1902.Opaque):
        return Varbind(oid, "Opaque", value.asOctets())
    if isinstance(value, univ.Integer):
        return Varbind(oid, "Integer32", int(value))
    if isinstance(value, univ.OctetString):
        return Varbind(oid, "OctetString", value.asOctets())
    if isinstance(value, univ.ObjectIdentifier):
        return Varbind(oid, "ObjectIdentifier", tuple(int(p) for p in value))
    return Varbind(oid, type(value).__name__, repr(value)[:80])




@functools.cache
def _watched_target_class() -> Any:
    """A ``UdpTransportTarget`` whose client socket counts datagrams that are not SNMP.

    pysnmp drops such datagrams silently, so a device answering garbage would look exactly
    like one that does not answer; the count lets a timeout be reported as what it is.
    """
    from pysnmp.carrier.asyncio.dgram import udp
    from pysnmp.hlapi.v3arch.asyncio import UdpTransportTarget
    from pysnmp.proto.api import decodeMessageVersion

    class WatchedUdp(udp.UdpAsyncioTransport):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.garbage: Counter[tuple[str, int]] = Counter()

        def datagram_received(self, datagram: bytes, address: Any) -> None:
            try:
                decodeMessageVersion(datagram)
            except Exception:
                self.garbage[(str(address[0]), int(address[1]))] += 1
                return
            super().datagram_received(datagram, address)

    class WatchedTarget(UdpTransportTarget):  # type: ignore[misc]
        PROTO_TRANSPORT = WatchedUdp

    return WatchedTarget


__all__ = ["AuthProtocol", "Oid", "PrivProtocol", "SnmpCredentials", "SnmpManager",
           "SnmpTarget", "SnmpType", "SnmpVersion", "Varbind", "parse_oid"]
