"""net-snmp's own tools against the RV-FMT30 simulator, with RADIVINA-FM-MIB loaded: the MIB
names what the agent serves, snmpwalk/snmpget read it, snmpset is refused for the read-only
community. Plus the hub's SNMP manager on the same agent (GETNEXT, GETBULK, walk, SET)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.e2e.fm import MIB_DIR, Station, base_mib_dirs, mib_args, net_snmp_ready, run_tool
from ttcs.adapters.pool import Transports
from ttcs.adapters.snmp import (
    AuthProtocol,
    PrivProtocol,
    SnmpCredentials,
    SnmpTarget,
    SnmpType,
    SnmpVersion,
)
from ttcs.core.config import Settings
from ttcs.core.errors import CommandRejected
from ttcs.plugins.radivina import mib

needs_net_snmp = pytest.mark.skipif(not net_snmp_ready(), reason="net-snmp or the IETF base "
                                    "MIBs are missing (make test installs snmp, erlang-snmp)")


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    s = await Station.start("RV-0042")
    yield s
    await s.stop()


def agent(station: Station) -> str:
    return f"127.0.0.1:{station.transmitter.port}"


def values(output: str) -> dict[str, str]:
    """``MODULE::name.index = TYPE: value`` lines as {name.index: value}."""
    found = {}
    for line in output.splitlines():
        m = re.match(r"^RADIVINA-FM-MIB::(\S+) = (?:[\w-]+: )?(.*)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip().strip('"')
    return found


@needs_net_snmp
async def test_every_oid_the_plugin_uses_is_the_one_the_mib_defines() -> None:
    for name, oid in mib.OBJECTS.items():
        rc, out, err = await run_tool("snmptranslate", *mib_args(), "-On",
                                      f"RADIVINA-FM-MIB::{name}")
        assert rc == 0, err
        assert out.strip() == "." + ".".join(map(str, oid)), name


@pytest.mark.skipif(shutil.which("smilint") is None or not base_mib_dirs(),
                    reason="smilint (smitools) is not installed")
def test_the_mib_passes_smilint(tmp_path: Path) -> None:
    # libsmi looks modules up by file name: give it the imports under their own names
    for base in base_mib_dirs():
        for module in ("SNMPv2-SMI", "SNMPv2-TC", "SNMPv2-CONF", "SNMP-FRAMEWORK-MIB"):
            if (Path(base) / f"{module}.mib").exists():
                shutil.copy(Path(base) / f"{module}.mib", tmp_path / module)
    shutil.copy(MIB_DIR / "RADIVINA-FM-MIB.mib", tmp_path / "RADIVINA-FM-MIB")
    checked = subprocess.run(["smilint", "-l", "6", "-s", str(tmp_path / "RADIVINA-FM-MIB")],
                             capture_output=True, text=True, timeout=30, check=False,
                             env={**os.environ, "SMIPATH": str(tmp_path)})
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


@needs_net_snmp
async def test_snmpwalk_reads_the_documented_objects(station: Station) -> None:
    rc, out, err = await run_tool("snmpwalk", "-v2c", "-c", "public", *mib_args(),
                                  agent(station), "RADIVINA-FM-MIB::radivina")
    assert rc == 0, err
    got = values(out)
    state = station.transmitter.state()
    assert got["rvFmSerialNumber.0"] == "RV-0042"
    assert got["rvFmRfEnable.0"] == "on(1)"
    assert got["rvFmFrequency.0"] == "60500 kHz"
    assert got["rvFmForwardPower.0"] == f"{round(state['forward_w'] * 10)} 0.1 W"
    assert got["rvFmVswr.0"] == f"{round(state['vswr'] * 100)} 0.01"
    assert got["rvFmAlarmBits.0"].endswith("audioSilent(4)")
    assert [got[f"rvFmZoneCode.{i}"] for i in (1, 2, 3, 4)] == ["1031", "1032", "1033", "1034"]
    assert got["rvFmZoneState.3"] == "off(2)"


@needs_net_snmp
async def test_snmpget_over_snmpv3_authpriv(station: Station) -> None:
    user = station.transmitter.credentials.users[0]
    rc, out, err = await run_tool(
        "snmpget", "-v3", "-l", "authPriv", "-u", user.name, "-a", "SHA", "-A", user.auth_key,
        "-x", "AES", "-X", str(user.priv_key), *mib_args(), agent(station),
        "RADIVINA-FM-MIB::rvFmModelName.0", "RADIVINA-FM-MIB::rvFmZoneName.4")
    assert rc == 0, err
    assert values(out) == {"rvFmModelName.0": "RV-FMT30", "rvFmZoneName.4": "Bến đò"}
    rc, _, err = await run_tool(
        "snmpget", "-v3", "-l", "authPriv", "-u", user.name, "-a", "SHA", "-A", "wrong-key-123",
        "-x", "AES", "-X", str(user.priv_key), agent(station), "1.3.6.1.2.1.1.1.0")
    assert rc != 0 and "Authentication failure" in err


@needs_net_snmp
async def test_snmpset_is_refused_for_the_read_only_community(station: Station) -> None:
    sim = station.transmitter
    rc, _, err = await run_tool("snmpset", "-v2c", "-c", "public", *mib_args(),
                                agent(station), "RADIVINA-FM-MIB::rvFmRfEnable.0", "i", "2")
    assert rc != 0 and "noAccess" in err
    assert sim.carrier and [r.code for r in sim.truth.rejections] == ["noAccess"]
    rc, out, err = await run_tool("snmpset", "-v2c", "-c", "private", *mib_args(),
                                  agent(station), "RADIVINA-FM-MIB::rvFmZoneState.2", "i", "1")
    assert rc == 0, err
    assert values(out) == {"rvFmZoneState.2": "on(1)"}
    assert sim.truth.zone_switches[-1]["sent"] == "*10321#"


@needs_net_snmp
async def test_snmpset_of_a_read_only_object_or_a_bad_value_is_refused(station: Station
                                                                        ) -> None:
    rc, _, err = await run_tool("snmpset", "-v2c", "-c", "private", *mib_args(),
                                agent(station), "RADIVINA-FM-MIB::rvFmForwardPower.0", "u", "1")
    assert rc != 0 and "notWritable" in err
    rc, _, err = await run_tool("snmpset", "-v2c", "-c", "private", *mib_args(),
                                agent(station), "RADIVINA-FM-MIB::rvFmFrequency.0", "u", "88000")
    assert rc != 0 and "wrongValue" in err
    assert station.transmitter.frequency_khz == 60_500


# -- the hub's SNMP manager on the same agent ------------------------------------------------------


@pytest.fixture
async def transports(settings: Settings) -> AsyncIterator[Transports]:
    t = Transports(settings)
    yield t
    await t.close()


def target(station: Station, community: str = "public") -> SnmpTarget:
    return SnmpTarget("127.0.0.1", SnmpCredentials.v2c(community),
                      port=station.transmitter.port, timeout=0.5, retries=1)


async def test_manager_walks_gets_next_and_bulk(station: Station, transports: Transports
                                                ) -> None:
    snmp = await transports.snmp()
    rows = await snmp.walk(target(station), mib.ZONE_TABLE)
    assert len(rows) == 4 * len(mib.ZONE_COLUMNS)
    assert rows[0].oid == mib.zone("rvFmZoneCode", 1) and rows[0].text() == "1031"
    [after] = await snmp.get_next(target(station), [mib.scalar("sysDescr")])
    assert after.oid == mib.scalar("sysObjectID") and after.object_id() == mib.PRODUCT_FMT30
    bulk = await snmp.get_bulk(target(station), [mib.SYSTEM["sysUpTime"],  # next: .0
                                                 mib.OBJECTS["rvFmZoneName"]],
                               non_repeaters=1, max_repetitions=2)
    assert bulk[0].type == "TimeTicks"
    assert [vb.text() for vb in bulk[1:]] == ["Thôn Lương Viện", "Thôn Phú Lễ"]
    [missing] = await snmp.get(target(station), [mib.zone("rvFmZoneCode", 9)])
    assert missing.missing and missing.type == "noSuchInstance"


async def test_manager_set_with_the_read_only_community_is_rejected(
        station: Station, transports: Transports) -> None:
    snmp = await transports.snmp()
    with pytest.raises(CommandRejected, match="noAccess") as refused:
        await snmp.set(target(station), [(mib.scalar("rvFmRfEnable"), SnmpType.INTEGER,
                                          mib.OFF)])
    assert refused.value.code == "snmp_no_access" and station.transmitter.carrier
    [echo] = await snmp.set(target(station, "private"),
                            [(mib.scalar("rvFmRdsPs"), SnmpType.OCTETS, "HUE FM")])
    assert echo.text() == "HUE FM" and station.transmitter.rds["ps"] == "HUE FM"


async def test_manager_set_of_the_wrong_type_is_rejected(station: Station,
                                                         transports: Transports) -> None:
    snmp = await transports.snmp()
    with pytest.raises(CommandRejected) as refused:
        await snmp.set(target(station, "private"),
                       [(mib.scalar("rvFmFrequency"), SnmpType.INTEGER, 60_000)])
    assert refused.value.code == "snmp_wrongType" and station.transmitter.frequency_khz == 60_500


async def test_two_agents_with_one_v3_user_name_and_different_keys(
        transports: Transports) -> None:
    from ttcs.simulators.snmp_agent import V3User

    stations = [await Station.start(f"RV-00{n}", users=[V3User("ops", f"auth-key-{n}-xyz",
                                                               f"priv-key-{n}-xyz")])
                for n in (5, 6)]
    try:
        snmp = await transports.snmp()
        for n, s in zip((5, 6), stations, strict=True):
            credentials = SnmpCredentials(
                SnmpVersion.V3, user="ops", auth_protocol=AuthProtocol.SHA,
                auth_key=SecretStr(f"auth-key-{n}-xyz"), priv_protocol=PrivProtocol.AES,
                priv_key=SecretStr(f"priv-key-{n}-xyz"))
            [serial] = await snmp.get(SnmpTarget("127.0.0.1", credentials,
                                                 port=s.transmitter.port, timeout=0.5),
                                      [mib.scalar("rvFmSerialNumber")])
            assert serial.text() == f"RV-00{n}"
    finally:
        for s in stations:
            await s.stop()
