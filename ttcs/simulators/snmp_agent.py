"""A small SNMP agent for simulators: pysnmp's command responders over a live object table.

A simulator describes its MIB as :class:`MibObject` rows (OID, syntax, a getter and, for
writable objects, a setter that may refuse with :class:`Refused`); :class:`SnmpAgent` answers
GET, GETNEXT, GETBULK and SET for them over UDP, with v2c communities and v3 USM users checked
by pysnmp's VACM. A read-only community gets a write view that contains nothing, so its SETs
are refused with ``noAccess`` (pysnmp would otherwise let an empty write view through).

Misbehaviour for fault injection happens on the socket (:class:`AgentFaults`): drop every
request (hang), answer late (slow), answer bytes that are not SNMP (garbage), lose the next
requests (a broken link), or answer well-formed PDUs whose values have the wrong type.
Restarting the agent (:meth:`SnmpAgent.restart`) starts a new engine with the same engine ID
and ``snmpEngineBoots`` one higher, as a rebooted device does.
"""

from __future__ import annotations

import asyncio
import bisect
import functools
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

log = structlog.get_logger("ttcs.sim.snmp")

Oid = tuple[int, ...]

#: syntaxes an object may have (SMI names as they travel on the wire)
SYNTAXES = frozenset({"Integer32", "Unsigned32", "Gauge32", "Counter32", "TimeTicks",
                      "OctetString", "ObjectIdentifier", "Bits"})


class Refused(Exception):
    """A setter refuses a value; ``status`` is the SNMP error-status to answer with."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class MibObject:
    """One instance the agent serves. ``set`` is None for read-only objects; it receives the
    decoded value (int, bytes, or a tuple for OIDs) and raises :class:`Refused` to refuse."""

    oid: Oid
    syntax: str
    get: Callable[[], Any]
    set: Callable[[Any], None] | None = None
    check: Callable[[Any], None] | None = None  # validation before any SET of the PDU applies

    def __post_init__(self) -> None:
        if self.syntax not in SYNTAXES:
            raise ValueError(f"unknown syntax {self.syntax}")


@dataclass
class V3User:
    name: str
    auth_key: str
    priv_key: str | None = None
    auth: str = "sha"  # md5, sha, sha256
    priv: str = "aes"  # des, aes
    write: bool = True


@dataclass
class AgentFaults:
    """What the agent's socket does instead of answering normally."""

    hang: bool = False  # take every request, answer none
    delay: float = 0.0  # seconds before a request is processed
    garbage: bool = False  # answer bytes that are not SNMP
    wrong_types: bool = False  # answer well-formed PDUs with values of the wrong syntax
    drop_next: int = 0  # lose this many requests (a broken link), then answer again
    dropped: int = 0
    in_flight: int = 0  # requests received and not processed yet (while slow)
    max_in_flight: int = 0  # the most seen at once: 1 when the manager serialises


@dataclass
class SetRecord:
    """A SET the agent received, for the ground truth."""

    at: float
    principal: str
    oid: Oid
    value: Any
    outcome: str  # ok, or the error-status


@dataclass
class AgentCredentials:
    """Communities (name -> writable?) and v3 users the agent accepts."""

    communities: dict[str, bool] = field(default_factory=dict)
    users: list[V3User] = field(default_factory=list)


def engine_id(enterprise: int, text: str) -> bytes:
    """An RFC 3411 snmpEngineID: the enterprise number (high bit set), format 4 (text)."""
    return (0x80000000 | enterprise).to_bytes(4, "big") + b"\x04" + text.encode()[:27]


class SnmpAgent:
    """The UDP SNMP agent of one simulated device (see the module docstring)."""

    def __init__(self, objects: Callable[[], list[MibObject]], *, host: str = "127.0.0.1",
                 port: int = 0, engine_id: bytes, credentials: AgentCredentials,
                 on_set: Callable[[SetRecord], None] | None = None) -> None:
        self._objects = objects
        self.host, self.port = host, port
        self.engine_id = engine_id
        self.credentials = credentials
        self.on_set = on_set
        self.faults = AgentFaults()
        self.boots = 0
        self.requests = 0
        self._engine: Any = None
        self._transport: Any = None
        self._communities: dict[str, str] = {}  # community index -> community, as configured
        self._users: list[str] = []
        self.started_at = time.monotonic()

    @property
    def running(self) -> bool:
        return self._engine is not None

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (on the same port as before, after a restart) with a fresh engine."""
        if self._engine is not None:
            return
        from pysnmp.carrier.asyncio.dgram import udp
        from pysnmp.entity import config, engine
        from pysnmp.entity.rfc3413 import cmdrsp, context
        from pysnmp.proto.api import v2c

        self.boots += 1
        snmp = engine.SnmpEngine(snmpEngineID=v2c.OctetString(self.engine_id))
        (boots,) = snmp.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB",
                                                         "snmpEngineBoots")
        boots.syntax = boots.syntax.clone(self.boots)
        transport = self._open_socket()
        config.add_transport(snmp, udp.DOMAIN_NAME, transport)
        self._configure_access(snmp)
        snmp_context = context.SnmpContext(snmp)
        snmp_context.unregister_context_name(b"")
        snmp_context.register_context_name(b"", _Instrumentation(self))
        for responder in (cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder,
                          cmdrsp.BulkCommandResponder, cmdrsp.SetCommandResponder):
            responder(snmp, snmp_context)
        snmp.transport_dispatcher.job_started(1)
        self._engine, self._transport = snmp, transport
        self.started_at = time.monotonic()

    async def stop(self) -> None:
        """Close the socket (the device is gone: requests get no answer)."""
        snmp, self._engine = self._engine, None
        if snmp is not None:
            try:
                snmp.transport_dispatcher.job_finished(1)
                snmp.close_dispatcher()
            except Exception:
                log.warning("snmp_agent.close_failed", exc_info=True)
        self._transport = None

    def _open_socket(self) -> Any:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]  # kept: the same port after a restart
        return _faulty_transport_class()(self).open_server_mode(sock=sock)

    def close_port(self) -> None:
        """Close the socket but keep the engine running (the device left the network)."""
        from pysnmp.carrier.asyncio.dgram import udp

        if self._engine is not None and self._transport is not None:
            self._engine.transport_dispatcher.unregister_transport(udp.DOMAIN_NAME)
            self._transport.close_transport()
            self._transport = None

    def open_port(self) -> None:
        """Listen again after :meth:`close_port` (same engine: boots and time go on)."""
        from pysnmp.carrier.asyncio.dgram import udp

        if self._engine is not None and self._transport is None:
            self._transport = self._open_socket()
            self._engine.transport_dispatcher.register_transport(udp.DOMAIN_NAME,
                                                                 self._transport)

    @property
    def listening(self) -> bool:
        return self._transport is not None

    async def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down ``down_for`` seconds, start again (snmpEngineBoots + 1)."""
        await self.stop()
        if down_for:
            await asyncio.sleep(down_for)
        await self.start()

    def reconfigure(self, credentials: AgentCredentials) -> None:
        """Accept other credentials from now on (takes effect on the running engine)."""
        self.credentials = credentials
        if self._engine is not None:
            from pysnmp.entity import config

            for index in list(self._communities):
                config.delete_v1_system(self._engine, index)
                config.delete_vacm_group(self._engine, 2, index)
            for user in self._users:
                config.delete_v3_user(self._engine, user)
                config.delete_vacm_group(self._engine, 3, user)
            self._configure_access(self._engine, views=False)

    def _configure_access(self, snmp: Any, *, views: bool = True) -> None:
        from pysnmp.entity import config

        if views:
            config.add_context(snmp, "")
            config.add_vacm_view(snmp, "everything", "included", (1, 3, 6, 1), b"")
            # A view with nothing in it: a group without write rights still needs a write
            # view name, or pysnmp lets its SETs through.
            config.add_vacm_view(snmp, "nothing", "excluded", (1, 3, 6, 1), b"")
            for group, write in (("readers", False), ("writers", True)):
                config.add_vacm_access(snmp, f"v2-{group}", "", 2, "noAuthNoPriv", "exact",
                                       "everything", "everything" if write else "nothing",
                                       "nothing")
                for level in ("authNoPriv", "authPriv"):
                    config.add_vacm_access(snmp, f"v3-{group}-{level}", "", 3, level,
                                           "exact", "everything",
                                           "everything" if write else "nothing", "nothing")
        self._communities = {}
        for n, (community, writable) in enumerate(self.credentials.communities.items()):
            index = f"c{n}-{'rw' if writable else 'ro'}"
            config.add_v1_system(snmp, index, community)
            config.add_vacm_group(snmp, f"v2-{'writers' if writable else 'readers'}", 2, index)
            self._communities[index] = community
        self._users = []
        for user in self.credentials.users:
            config.add_v3_user(snmp, user.name, _auth(user.auth), user.auth_key,
                               _priv(user.priv) if user.priv_key else _priv(None),
                               user.priv_key)
            level = "authPriv" if user.priv_key else "authNoPriv"
            config.add_vacm_group(snmp, f"v3-{'writers' if user.write else 'readers'}-{level}",
                                  3, user.name)
            self._users.append(user.name)

    # -- what the responders ask --------------------------------------------------------------

    def table(self) -> tuple[list[Oid], dict[Oid, MibObject]]:
        objects = {o.oid: o for o in self._objects()}
        return sorted(objects), objects

    def principal(self) -> str:
        """Community index or user name of the request being answered."""
        if self._engine is None:
            return "?"
        try:
            ctx = self._engine.observer.get_execution_context("rfc3412.receiveMessage:request")
            return str(ctx["securityName"])
        except Exception:
            return "?"


def _auth(name: str) -> Any:
    from pysnmp.entity import config

    return {"md5": config.USM_AUTH_HMAC96_MD5, "sha": config.USM_AUTH_HMAC96_SHA,
            "sha256": config.USM_AUTH_HMAC192_SHA256}[name]


def _priv(name: str | None) -> Any:
    from pysnmp.entity import config

    return {None: config.USM_PRIV_NONE, "des": config.USM_PRIV_CBC56_DES,
            "aes": config.USM_PRIV_CFB128_AES}[name]


# -- the MIB instrumentation the command responders call ----------------------------------------


class _Instrumentation:
    """Answers the responders from the agent's live table (pysnmp's instrumentation API:
    ``read_variables``, ``read_next_variables``, ``write_variables``; synchronous)."""

    def __init__(self, agent: SnmpAgent) -> None:
        self.agent = agent

    def _allowed(self, view: str, oid: Oid, value: Any, idx: int, context: dict[str, Any]
                 ) -> bool:
        ac = context.get("acFun")
        if ac is None:
            return True
        # acFun returns True when the OID is outside the view, raises on no access at all
        return not ac(view, (oid, value), snmpEngine=context["snmpEngine"], idx=idx)

    def read_variables(self, *varbinds: Any, **context: Any) -> list[tuple[Oid, Any]]:
        from pysnmp.smi import exval

        names, objects = self.agent.table()
        out = []
        for idx, (name, value) in enumerate(varbinds):
            oid = tuple(name)
            obj = objects.get(oid)
            if obj is None or not self._allowed("read", oid, value, idx, context):
                known_object = any(o[:-1] == oid[:-1] for o in names) and obj is None
                out.append((oid, exval.noSuchInstance if known_object else exval.noSuchObject))
            else:
                out.append((oid, self._encode(obj)))
        return out

    def read_next_variables(self, *varbinds: Any, **context: Any) -> list[tuple[Oid, Any]]:
        from pysnmp.smi import exval

        names, objects = self.agent.table()
        out = []
        for idx, (name, value) in enumerate(varbinds):
            oid = tuple(name)
            at = bisect.bisect_right(names, oid)
            while at < len(names) and not self._allowed("read", names[at], value, idx,
                                                        context):
                at += 1
            if at == len(names):
                out.append((oid, exval.endOfMibView))
            else:
                out.append((names[at], self._encode(objects[names[at]])))
        return out

    def write_variables(self, *varbinds: Any, **context: Any) -> list[tuple[Oid, Any]]:
        from pysnmp.smi import error as smi

        _, objects = self.agent.table()
        principal = self.agent.principal()
        decoded: list[tuple[MibObject, Any]] = []
        for idx, (name, value) in enumerate(varbinds):
            oid = tuple(name)
            obj = objects.get(oid)
            try:
                if obj is None:
                    raise Refused("notWritable", "no such object")
                if not self._allowed("write", oid, value, idx, context):
                    raise Refused("noAccess", "outside the write view")
                if obj.set is None:
                    raise Refused("notWritable", "read-only object")
                plain = _decode(obj.syntax, value)
                if obj.check is not None:
                    obj.check(plain)
                decoded.append((obj, plain))
            except Refused as exc:
                self._record(principal, oid, value, exc.status)
                raise _SMI_ERRORS.get(exc.status, smi.GenError)(name=oid, idx=idx) from exc
            except smi.SmiError as exc:  # VACM said no group / no view at all
                self._record(principal, oid, value, "authorizationError")
                raise exc
        for obj, plain in decoded:  # every value checked: apply all of them
            try:
                assert obj.set is not None
                obj.set(plain)
            except Refused as exc:
                self._record(principal, obj.oid, plain, exc.status)
                raise _SMI_ERRORS.get(exc.status, smi.GenError)(name=obj.oid, idx=0) from exc
            self._record(principal, obj.oid, plain, "ok")
        return [(obj.oid, self._encode(obj)) for obj, _ in decoded]

    def _record(self, principal: str, oid: Oid, value: Any, outcome: str) -> None:
        if self.agent.on_set is not None:
            self.agent.on_set(SetRecord(time.time(), principal, oid,
                                        value if isinstance(value, int | bytes | str | tuple)
                                        else str(value), outcome))

    def _encode(self, obj: MibObject) -> Any:
        from pysnmp.proto import rfc1902

        value = obj.get()
        if self.agent.faults.wrong_types:  # firmware bug: every syntax swapped for another
            if obj.syntax in ("OctetString", "Bits"):
                return rfc1902.Integer32(random.randint(-9, 9))
            return rfc1902.OctetString(b"\xff?" + bytes([random.getrandbits(8)]))
        return _wrap(obj.syntax, value)


def _wrap(syntax: str, value: Any) -> Any:
    from pysnmp.proto import rfc1902

    if syntax == "Integer32":
        return rfc1902.Integer32(int(value))
    if syntax == "Unsigned32":
        return rfc1902.Unsigned32(int(value))
    if syntax == "Gauge32":
        return rfc1902.Gauge32(max(0, min(int(value), 2**32 - 1)))
    if syntax == "Counter32":
        return rfc1902.Counter32(int(value) % 2**32)
    if syntax == "TimeTicks":
        return rfc1902.TimeTicks(int(value) % 2**32)
    if syntax == "ObjectIdentifier":
        return rfc1902.ObjectIdentifier(value)
    if syntax == "Bits":  # named bits: bit 0 is the high bit of the first octet
        bits = [n for n in range(64) if int(value) >> n & 1]
        octets = bytearray((max(bits) // 8 + 1) if bits else 1)
        for n in bits:
            octets[n // 8] |= 0x80 >> (n % 8)
        return rfc1902.OctetString(bytes(octets))
    return rfc1902.OctetString(value if isinstance(value, bytes) else str(value).encode())


def _decode(syntax: str, value: Any) -> Any:
    """A SET value in plain Python, or :class:`Refused` ``wrongType`` if its syntax differs."""
    from pyasn1.type import univ
    from pysnmp.proto import rfc1902

    integer_ok = {"Integer32": (rfc1902.Integer32, univ.Integer),
                  "Unsigned32": (rfc1902.Unsigned32, rfc1902.Gauge32),
                  "Gauge32": (rfc1902.Unsigned32, rfc1902.Gauge32),
                  "TimeTicks": (rfc1902.TimeTicks,)}
    if syntax in integer_ok:
        wanted = integer_ok[syntax]
        unsigned = (rfc1902.Unsigned32, rfc1902.Gauge32, rfc1902.Counter32, rfc1902.TimeTicks,
                    rfc1902.Counter64)
        # INTEGER and Unsigned32 are different tags: an Integer32 for an Unsigned32 is wrong
        if syntax == "Integer32" and isinstance(value, unsigned):
            raise Refused("wrongType", f"{type(value).__name__} for an INTEGER")
        if isinstance(value, wanted):
            return int(value)
        raise Refused("wrongType", f"{type(value).__name__} for {syntax}")
    if syntax in ("OctetString", "Bits"):
        if isinstance(value, univ.OctetString) and not isinstance(value, rfc1902.IpAddress):
            return value.asOctets()
        raise Refused("wrongType", f"{type(value).__name__} for an OCTET STRING")
    if syntax == "ObjectIdentifier" and isinstance(value, univ.ObjectIdentifier):
        return tuple(value)
    raise Refused("wrongType", f"{type(value).__name__} for {syntax}")


def _smi_errors() -> dict[str, Any]:
    from pysnmp.smi import error as smi

    return {"noAccess": smi.NoAccessError, "notWritable": smi.NotWritableError,
            "wrongType": smi.WrongTypeError, "wrongValue": smi.WrongValueError,
            "wrongLength": smi.WrongLengthError, "inconsistentValue": smi.InconsistentValueError,
            "resourceUnavailable": smi.ResourceUnavailableError,
            "commitFailed": smi.CommitFailedError, "genErr": smi.GenError}


_SMI_ERRORS: dict[str, Any] = {}


@functools.cache
def _faulty_transport_class() -> Any:
    """pysnmp's asyncio UDP transport, with the agent's faults applied to incoming requests."""
    from pysnmp.carrier.asyncio.dgram import udp

    _SMI_ERRORS.update(_smi_errors())

    class FaultyUdp(udp.UdpAsyncioTransport):  # type: ignore[misc]
        def __init__(self, agent: SnmpAgent) -> None:
            super().__init__()
            self.agent = agent

        def datagram_received(self, datagram: bytes, address: Any) -> None:
            faults = self.agent.faults
            self.agent.requests += 1
            if faults.hang:
                return
            if faults.drop_next > 0:
                faults.drop_next -= 1
                faults.dropped += 1
                return
            if faults.garbage:
                if self.transport is not None:
                    noise = bytes(random.getrandbits(8) for _ in range(random.randint(6, 40)))
                    self.transport.sendto(b"\x00\xfe" + noise, address)
                return
            faults.in_flight += 1
            faults.max_in_flight = max(faults.max_in_flight, faults.in_flight)
            if faults.delay > 0:
                self.loop.call_later(faults.delay, self._process, datagram, address)
            else:
                self._process(datagram, address)

        def _process(self, datagram: bytes, address: Any) -> None:
            self.agent.faults.in_flight -= 1
            if self.agent._transport is not self:
                return  # the agent restarted (or stopped) while this waited
            super().datagram_received(datagram, address)

    return FaultyUdp


__all__ = ["AgentCredentials", "AgentFaults", "MibObject", "Refused", "SetRecord",
           "SnmpAgent", "V3User", "engine_id"]
