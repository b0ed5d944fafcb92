"""CLI-level tests of the commands so far tested only below the CLI: the official area list,
YAML area files, area merges, bulk device imports (CSV, YAML, ``--all-or-nothing``),
discovered devices and their adoption, and the simulator list.

Each command goes through :func:`ttcs.cli.main` — the function behind the ``ttcs``
executable — with its own ``TTCS_HOME`` store, its stdout and stderr captured and its exit
code returned, in a worker thread (``main`` runs its own event loop). That spares the ~2 s of
interpreter start-up a subprocess pays per call; the executable itself still runs for
``sim list`` and for what runs in the background (``ttcs serve``, ``ttcs sim run``). Every
test checks the exit code, the output, and what the store holds afterwards by asking the CLI
again."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import Mosquitto
from tests.support.net import free_port
from ttcs.cli import main
from ttcs.core.logging import configure

TTCS = str(Path(sys.executable).with_name("ttcs"))

AREAS_CSV = """code,name,type,parent_code
46,Thành phố Huế,municipality,
19900,Phường Thuận An,ward,46
19900-01,Tổ dân phố 1,residential_group,19900
"""

PREFIX = f"CMD{os.getpid()}"

#: one in-process ``main`` at a time: it reads os.environ and prints to sys.stdout/stderr
_MAIN = threading.Lock()
#: settings from the environment that must not leak in from the shell running the tests
_UNSET = ("TTCS_URL", "TTCS_DATABASE_URL", "TTCS_TOKEN", "TTCS_TOKEN_FILE")


class Cli:
    """``ttcs`` on one store (``TTCS_HOME``) and one broker; a short probe timeout so that a
    device that announced nothing fails its row quickly."""

    def __init__(self, home: Path, broker: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        settings = home.parent / "settings.yaml"
        settings.write_text("probe_timeout: 2.0\n", encoding="utf-8")
        self.env = {"TTCS_HOME": str(home), "TTCS_MQTT_URL": broker,
                    "TTCS_CONFIG": str(settings)}

    def process_env(self) -> dict[str, str]:
        """The environment for a ``ttcs`` subprocess on the same store."""
        env = {k: v for k, v in os.environ.items() if k not in _UNSET}
        return {**env, **self.env}

    async def run(self, *args: str, ok: bool = True) -> tuple[int, str, str]:
        code, out, err = await asyncio.to_thread(self._main, list(args))
        if ok and code != 0:
            raise AssertionError(f"ttcs {' '.join(args)} failed ({code}): {err}")
        return code, out, err

    def _main(self, argv: list[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with _MAIN:
            saved = dict(os.environ)
            for var in _UNSET:
                os.environ.pop(var, None)
            os.environ.update(self.env)
            try:
                with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                    try:
                        code = main(argv)
                    except SystemExit as exc:  # argparse: usage errors, --help
                        code = exc.code if isinstance(exc.code, int) else 1
            finally:
                os.environ.clear()
                os.environ.update(saved)
                configure(level="warning")  # main pointed the logs at `err`: as conftest has it
        return code, out.getvalue(), err.getvalue()

    async def fails(self, *args: str) -> tuple[str, str]:
        """Run a command that must fail with exit code 1; (stdout, stderr)."""
        code, out, err = await self.run(*args, ok=False)
        assert code == 1, f"ttcs {' '.join(args)} exited {code}: {err}"
        return out, err

    async def json(self, *args: str, ok: bool = True) -> Any:
        return json.loads((await self.run(*args, "--json", ok=ok))[1])

    async def exe(self, *args: str) -> tuple[int, str, str]:
        """The real ``ttcs`` executable, as a subprocess."""
        proc = await asyncio.create_subprocess_exec(
            TTCS, *args, env=self.process_env(), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode or 0, out.decode(), err.decode()


def _one_line_error(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.strip()


@pytest.fixture(scope="module")
def speakers(mosquitto: Mosquitto) -> Iterator[list[str]]:
    """Four simulated native speakers on Mosquitto (``ttcs sim run native``), shared by the
    module: each test registers them in a store of its own."""
    proc = subprocess.Popen(
        [TTCS, "sim", "run", "native", "--broker", mosquitto.url(), "--count", "4",
         "--serial-prefix", PREFIX], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    info = json.loads(proc.stdout.readline())
    yield [d["serial"] for d in info["devices"]]
    proc.terminate()
    proc.wait(15)


@pytest.fixture
async def bare(tmp_path: Path, mosquitto: Mosquitto) -> Cli:
    """A CLI on an empty store."""
    return Cli(tmp_path / "var", mosquitto.url())


@pytest.fixture
async def cli(bare: Cli, tmp_path: Path) -> Cli:
    """A CLI on a store holding Huế, Phường Thuận An and one of its residential groups."""
    areas = tmp_path / "areas.csv"
    areas.write_text(AREAS_CSV, encoding="utf-8")
    await bare.run("areas", "import", str(areas))
    return bare


# -- ttcs sim list -------------------------------------------------------------------------------


async def test_sim_list_names_every_simulator_with_its_kinds_and_protocol(bare: Cli) -> None:
    # the executable itself, once in this file: table and JSON side by side
    (code, table, _), (code_json, raw, _) = await asyncio.gather(
        bare.exe("sim", "list"), bare.exe("sim", "list", "--json"))
    assert (code, code_json) == (0, 0)
    listed = json.loads(raw)
    _, err = await bare.fails("sim", "run", "nope")
    by_name = {s["name"]: s for s in listed}
    assert {"native", "saokhue", "vang", "ledviet", "zonetech", "radivina"} <= set(by_name)
    assert by_name["native"]["kinds"] == ["ip_speaker"]
    assert by_name["native"]["protocol"] == "mqtt (ttcs-native/1)"
    assert by_name["saokhue"]["protocol"] == "mqtt (skr-mqtt/2)"
    assert all(s["description"] for s in listed)
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "KINDS", "PROTOCOL", "DESCRIPTION"]
    assert [line.split()[0] for line in lines[1:]] == [s["name"] for s in listed]
    native = next(line for line in lines if line.startswith("native "))
    assert "ip_speaker" in native and "mqtt (ttcs-native/1)" in native
    # `sim run` offers exactly what `sim list` lists
    assert _one_line_error(err) == (
        f"error: no simulator 'nope' (available: {', '.join(sorted(by_name))})")


# -- ttcs areas import --official ----------------------------------------------------------------


async def test_official_import_seeds_one_province_and_is_idempotent(bare: Cli) -> None:
    (_, err_unknown), (_, err_neither), (_, err_both), result = await asyncio.gather(
        bare.fails("areas", "import", "--official", "99"),
        bare.fails("areas", "import"),
        bare.fails("areas", "import", "x.csv", "--official", "46"),
        bare.json("areas", "import", "--official", "46"))
    assert _one_line_error(err_unknown).startswith(
        "error: 99 is not an official province code (known: 1, 4, 8,")
    assert ", 46, " in err_unknown
    assert _one_line_error(err_neither) == "error: give either FILE or --official PROVINCE_CODE"
    assert _one_line_error(err_both) == "error: give either FILE or --official PROVINCE_CODE"
    assert result == {"read": 41, "created": 41, "updated": 0}

    everything, wards, (_, again, _) = await asyncio.gather(
        bare.json("areas", "list"), bare.json("areas", "list", "--parent", "46"),
        bare.run("areas", "import", "--official", "46"))
    # only Huế came in: the province and its 40 communes and wards, nothing of other provinces
    assert len(everything) == 41
    assert [a for a in everything if a["parent_code"] is None] == [
        {"code": "46", "name": "Thành phố Huế", "type": "municipality", "parent_code": None}]
    assert len(wards) == 40
    assert {a["type"] for a in wards} == {"ward", "commune"}
    by_code = {a["code"]: a for a in wards}
    assert by_code["19900"]["name"] == "Phường Thuận An"
    assert by_code["20014"]["name"] == "Phường Hóa Châu"
    assert again.strip() == "41 areas read: 0 created, 0 updated"


async def test_official_import_keeps_local_villages_below_official_wards(cli: Cli) -> None:
    result = await cli.json("areas", "import", "--official", "46")
    # 46 and 19900 came from the local CSV with the official names: neither changes
    assert result == {"read": 41, "created": 39, "updated": 0}
    below = await cli.json("areas", "list", "--parent", "19900")
    assert below == [{"code": "19900-01", "name": "Tổ dân phố 1", "type": "residential_group",
                      "parent_code": "19900"}]


# -- ttcs areas import FILE.yaml -----------------------------------------------------------------


AREAS_YAML = """\
areas:
  - {code: "20014-01", name: "Tổ dân phố 1", type: residential_group, parent_code: "20014"}
  - {code: "20014", name: "Phường Hóa Châu", type: ward, parent_code: "46"}
  - code: "20101"
    name: "Xã A Lưới 4"
    type: commune
    parent_code: "46"
  - {code: "20101-01", name: "Thôn 1", type: village, parent_code: "20101"}
"""


async def test_a_yaml_area_file_is_imported_children_before_parents(cli: Cli,
                                                                    tmp_path: Path) -> None:
    mapping = tmp_path / "areas.yaml"
    mapping.write_text(AREAS_YAML, encoding="utf-8")
    _, out, _ = await cli.run("areas", "import", str(mapping))
    assert out.strip() == "4 areas read: 4 created, 0 updated"

    # a bare list works too; one renamed area is an update, the rest unchanged
    bare_list = tmp_path / "renamed.yml"
    bare_list.write_text(
        '- {code: "20101-01", name: "Thôn Lương Viện", type: village, parent_code: "20101"}\n'
        '- {code: "20014", name: "Phường Hóa Châu", type: ward, parent_code: "46"}\n',
        encoding="utf-8")
    # a file with one bad row is refused whole, naming the row
    bad = tmp_path / "bad.yaml"
    bad.write_text('- {code: "20200", name: "Xã Mới", type: commune, parent_code: "46"}\n'
                   '- {code: "20200-01", name: "Thôn X", type: planet, parent_code: "20200"}\n',
                   encoding="utf-8")
    not_a_list = tmp_path / "scalar.yaml"
    not_a_list.write_text("just text\n", encoding="utf-8")
    renamed, (_, err_bad), (_, err_shape) = await asyncio.gather(
        cli.json("areas", "import", str(bare_list)),
        cli.fails("areas", "import", str(bad)),
        cli.fails("areas", "import", str(not_a_list)))
    assert renamed == {"read": 2, "created": 0, "updated": 1}
    assert _one_line_error(err_bad).startswith(f"error: {bad}: 1 bad row(s): row 2: ")
    assert "type" in err_bad
    assert _one_line_error(err_shape) == (
        f"error: {not_a_list}: expected a list of areas (code, name, type, parent_code)")

    under_46, under_20014, under_20101 = await asyncio.gather(
        cli.json("areas", "list", "--parent", "46"),
        cli.json("areas", "list", "--parent", "20014"),
        cli.json("areas", "list", "--under", "20101"))
    assert [a["code"] for a in under_46] == ["19900", "20014", "20101"]  # no 20200
    assert [(a["code"], a["type"]) for a in under_20014] == [("20014-01", "residential_group")]
    assert [(a["code"], a["name"]) for a in under_20101] == [
        ("20101", "Xã A Lưới 4"), ("20101-01", "Thôn Lương Viện")]


# -- ttcs areas merge ----------------------------------------------------------------------------


async def test_merging_a_ward_moves_its_villages_devices_and_groups(
        cli: Cli, tmp_path: Path, speakers: list[str]) -> None:
    yaml_file = tmp_path / "areas.yaml"
    yaml_file.write_text(AREAS_YAML, encoding="utf-8")
    await cli.run("areas", "import", str(yaml_file))
    await asyncio.gather(
        cli.run("groups", "add", "hoa-chau", "--area", "20014"),
        cli.run("devices", "add", "--plugin", "native", "--kind", "ip_speaker", "--area",
                "20014", "--village", "20014-01", "--config", f"serial={speakers[0]}"))

    (_, err_self), (_, err_cycle), (_, err_missing) = await asyncio.gather(
        cli.fails("areas", "merge", "20014", "--into", "20014"),
        cli.fails("areas", "merge", "46", "--into", "20014"),
        cli.fails("areas", "merge", "99999", "--into", "19900"))
    assert _one_line_error(err_self) == "error: cannot merge area 20014 into itself"
    assert "cycle" in _one_line_error(err_cycle)
    assert _one_line_error(err_missing) == "error: no area '99999' to merge"

    _, out, _ = await cli.run("areas", "merge", "20014", "--into", "19900")
    assert out.strip() == ("merged 20014 into 19900: moved 1 areas, 1 devices, 1 groups")

    under_46, under_19900, devices, groups, audit = await asyncio.gather(
        cli.json("areas", "list", "--parent", "46"),
        cli.json("areas", "list", "--parent", "19900"),
        cli.json("devices", "list"),
        cli.json("groups", "list"),
        cli.json("audit", "list", "--action", "area.merge"))
    assert [a["code"] for a in under_46] == ["19900", "20101"]  # 20014 is gone from listings
    assert [a["code"] for a in under_19900] == ["19900-01", "20014-01"]
    assert [(d["serial"], d["area_code"], d["village_code"]) for d in devices] == [
        (speakers[0], "19900", "20014-01")]
    assert [(g["id"], g["area_code"], g["devices"]) for g in groups] == [
        ("hoa-chau", "19900", 0)]
    assert [(e["target"], e["outcome"]) for e in audit] == [("19900", "ok")]
    assert audit[0]["detail"]["sources"] == ["20014"]
    # merged once: merging it again finds nothing to merge
    _, err_again = await cli.fails("areas", "merge", "20014", "--into", "19900")
    assert _one_line_error(err_again) == "error: no area '20014' to merge"


# -- ttcs groups update / remove -----------------------------------------------------------------


async def test_a_group_is_renamed_and_removed_and_its_devices_stay(
        cli: Cli, speakers: list[str]) -> None:
    await asyncio.gather(
        cli.run("groups", "add", "ven-bien", "--name", "Ven biển", "--area", "19900"),
        cli.run("devices", "add", "--plugin", "native", "--kind", "ip_speaker", "--area",
                "19900", "--config", f"serial={speakers[3]}"))
    device = f"native-{speakers[3].lower()}"
    await cli.run("groups", "members", "ven-bien", "--add", device)

    renamed = await cli.json("groups", "update", "ven-bien", "--name", "Loa ven biển")
    assert (renamed["id"], renamed["name"]) == ("ven-bien", "Loa ven biển")
    (_, err_nothing), (_, err_missing) = await asyncio.gather(
        cli.fails("groups", "update", "ven-bien"),
        cli.fails("groups", "update", "khong-co", "--name", "x"))
    assert _one_line_error(err_nothing) == (
        "error: nothing to change: give a name or a description")
    assert _one_line_error(err_missing) == "error: no group 'khong-co'"
    assert [(g["id"], g["name"], g["devices"]) for g in await cli.json("groups", "list")] == [
        ("ven-bien", "Loa ven biển", 1)]

    _, out, _ = await cli.run("groups", "remove", "ven-bien")
    assert out.strip() == (
        "group ven-bien deleted (1 devices were in it; they stay registered)")
    groups, devices, audit = await asyncio.gather(
        cli.json("groups", "list"), cli.json("devices", "list"),
        cli.json("audit", "list", "--action", "group.delete"))
    assert groups == []
    assert [(d["id"], d["groups"]) for d in devices] == [(device, [])]
    assert [(e["target"], e["outcome"], e["detail"]) for e in audit] == [
        ("ven-bien", "ok", {"devices": 1})]
    _, err_gone = await cli.fails("groups", "remove", "ven-bien")
    assert _one_line_error(err_gone) == "error: no group 'ven-bien'"


# -- ttcs devices import -------------------------------------------------------------------------


async def test_a_csv_import_reports_each_bad_row_and_keeps_every_good_one(
        cli: Cli, tmp_path: Path, speakers: list[str]) -> None:
    await cli.run("groups", "add", "cho", "--area", "19900")
    rows = tmp_path / "devices.csv"
    rows.write_text(
        "plugin,kind,area_code,village_code,name,groups,lat,lon,config.serial\n"
        f"native,ip_speaker,19900,19900-01,Loa chợ,cho,16.56,107.63,{speakers[0]}\n"
        f"native,ip_speaker,99999,,Loa lạc,,,,{speakers[1]}\n"
        "native,toaster,19900,,Loa hỏng,,,,X-1\n"
        f"native,ip_speaker,19900,,Loa ma,,,,GHOST-{PREFIX}\n"
        f"native,ip_speaker,19900,,Loa bến,,,,{speakers[2]}\n", encoding="utf-8")
    code, out, err = await cli.run("devices", "import", str(rows), ok=False)
    assert code == 1, err
    lines = out.splitlines()
    assert lines[0].split() == ["ROW", "OK", "ID", "ERROR"]
    table = {int(line.split()[0]): line for line in lines[1:6]}
    assert table.keys() == {1, 2, 3, 4, 5}
    assert table[1].split()[1:3] == ["True", f"native-{speakers[0].lower()}"]
    assert table[5].split()[1:3] == ["True", f"native-{speakers[2].lower()}"]
    assert "False" in table[2] and "no area with code '99999'" in table[2]
    assert "False" in table[3] and "kind" in table[3]
    assert "False" in table[4] and "announced nothing" in table[4]
    assert lines[6] == "2 of 5 rows registered"

    devices, members = await asyncio.gather(cli.json("devices", "list"),
                                            cli.json("groups", "members", "cho"))
    by_serial = {d["serial"]: d for d in devices}
    assert by_serial.keys() == {speakers[0], speakers[2]}
    first = by_serial[speakers[0]]
    assert (first["name"], first["area_code"], first["village_code"]) == (
        "Loa chợ", "19900", "19900-01")
    assert first["location"]["lat"] == pytest.approx(16.56)
    assert (first["vendor"], first["firmware"]) == ("TTCS reference", "1.4.2")  # as announced
    assert members == [first["id"]]

    # the same file again: the good rows now clash with what is registered, nothing doubles
    again = await cli.json("devices", "import", str(rows), ok=False)
    assert (again["ok"], again["committed"]) == (False, True)
    assert [r["ok"] for r in again["rows"]] == [False] * 5
    assert "already registered" in again["rows"][0]["error"]
    assert len(await cli.json("devices", "list")) == 2


async def test_a_yaml_import_with_all_or_nothing_keeps_nothing_when_one_row_fails(
        cli: Cli, tmp_path: Path, speakers: list[str]) -> None:
    good = [{"plugin": "native", "kind": "ip_speaker", "area_code": "19900",
             "name": f"Loa {n}", "config": {"serial": serial}}
            for n, serial in enumerate(speakers[:3], start=1)]
    ghost = {"plugin": "native", "kind": "ip_speaker", "area_code": "19900",
             "config": {"serial": f"GHOST-{PREFIX}"}}
    broken = tmp_path / "broken.yaml"
    broken.write_text(json.dumps({"devices": [*good, ghost]}), encoding="utf-8")
    report = await cli.json("devices", "import", str(broken), "--all-or-nothing", ok=False)
    assert (report["ok"], report["committed"]) == (False, False)
    assert [r["row"] for r in report["rows"]] == [1, 2, 3, 4]
    assert all(not r["ok"] and r["id"] is None for r in report["rows"])
    assert "announced nothing" in report["rows"][3]["error"]
    assert report["rows"][0]["error"] == "not written (--all-or-nothing: another row failed)"
    code, out, _ = await cli.run("devices", "import", str(broken), "--all-or-nothing",
                                 ok=False)
    assert code == 1
    assert out.splitlines()[-1] == "0 of 4 rows registered (nothing kept: --all-or-nothing)"
    assert await cli.json("devices", "list") == []

    fine = tmp_path / "fine.yml"
    fine.write_text(json.dumps(good), encoding="utf-8")  # (JSON is YAML) a bare list
    _, out, _ = await cli.run("devices", "import", str(fine), "--all-or-nothing")
    assert out.splitlines()[-1] == "3 of 3 rows registered"
    listed = await cli.json("devices", "list")
    assert sorted((d["serial"], d["name"]) for d in listed) == [
        (serial, f"Loa {n}") for n, serial in enumerate(speakers[:3], start=1)]


async def test_all_or_nothing_keeps_nothing_when_a_row_clashes_with_a_registered_device(
        cli: Cli, tmp_path: Path, speakers: list[str]) -> None:
    await cli.run("devices", "add", "--plugin", "native", "--kind", "ip_speaker", "--area",
                  "19900", "--config", f"serial={speakers[3]}")
    rows = tmp_path / "devices.yaml"
    rows.write_text("".join(
        f"- {{plugin: native, kind: ip_speaker, area_code: '19900', config: {{serial: {s}}}}}\n"
        for s in (speakers[0], speakers[3])), encoding="utf-8")
    report = await cli.json("devices", "import", str(rows), "--all-or-nothing", ok=False)
    assert (report["ok"], report["committed"]) == (False, False)
    assert "already registered" in report["rows"][1]["error"]
    assert report["rows"][0]["ok"] is False
    listed = await cli.json("devices", "list")
    assert [d["serial"] for d in listed] == [speakers[3]]


async def test_a_missing_file_is_one_line_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    (_, err_devices), (_, err_areas) = await asyncio.gather(
        cli.fails("devices", "import", str(tmp_path / "none.csv")),
        cli.fails("areas", "import", str(tmp_path / "none.yaml")))
    assert _one_line_error(err_devices) == (
        f"error: cannot read {tmp_path / 'none.csv'}: No such file or directory")
    assert _one_line_error(err_areas) == (
        f"error: cannot read {tmp_path / 'none.yaml'}: No such file or directory")
    assert await cli.json("devices", "list") == []


@pytest.mark.parametrize("group", ["areas", "devices"])
async def test_a_file_that_is_not_yaml_is_refused_in_one_line(
        cli: Cli, tmp_path: Path, group: str) -> None:
    not_yaml = tmp_path / "list.yaml"
    not_yaml.write_text(f"{group}: [unclosed\n", encoding="utf-8")
    _, err = await cli.fails(group, "import", str(not_yaml))
    assert err.startswith(f"error: {not_yaml} is not valid YAML")
    assert err.count("\n") == 1, err
    assert "(line 2, column 1)" in err  # where it is wrong, in that one line


# -- ttcs devices discovered / adopt -------------------------------------------------------------


@pytest.fixture
async def serving(cli: Cli, amqtt_url: str, tmp_path: Path) -> AsyncIterator[Cli]:
    """``ttcs serve`` on the CLI's store and a broker of its own (so that only the speakers of
    this test announce themselves to its discovery)."""
    cli.env.update({"TTCS_MQTT_URL": amqtt_url, "TTCS_API_PORT": str(free_port())})
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            TTCS, "serve", env=cli.process_env(), stdout=asyncio.subprocess.PIPE,
            stderr=stderr)
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(30):
            while b"TTCS Hub is running." not in (line := await proc.stdout.readline()):
                assert line, f"ttcs serve stopped: {log.read_text(encoding='utf-8')}"
        yield cli
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_announcing_speakers_are_listed_as_discovered_and_adopted_into_an_area(
        serving: Cli, amqtt_url: str) -> None:
    cli = serving
    sim = await asyncio.create_subprocess_exec(
        TTCS, "sim", "run", "native", "--broker", amqtt_url, "--count", "2",
        "--serial-prefix", f"NEW{os.getpid()}", stdout=asyncio.subprocess.PIPE)
    try:
        assert sim.stdout is not None
        serials = [d["serial"] for d in json.loads(
            await asyncio.wait_for(sim.stdout.readline(), 30))["devices"]]
        found: list[dict[str, Any]] = []
        async with asyncio.timeout(20):
            while len(found) < 2:
                found = await cli.json("devices", "discovered")
        assert sorted(d["info"]["serial"] for d in found) == sorted(serials)
        assert {(d["plugin"], d["info"]["kind"]) for d in found} == {("native", "ip_speaker")}
        _, table, _ = await cli.run("devices", "discovered")
        assert table.splitlines()[0].split() == [
            "PLUGIN", "SERIAL", "KIND", "MODEL", "FIRMWARE", "LAST_SEEN"]
        assert all(any(s in line and "native" in line for line in table.splitlines())
                   for s in serials)
        assert await cli.json("devices", "list") == []  # discovered is not registered

        (_, err_ghost), (_, err_area) = await asyncio.gather(
            cli.fails("devices", "adopt", "NOBODY", "--area", "19900"),
            cli.fails("devices", "adopt", serials[1], "--area", "99999"))
        assert _one_line_error(err_ghost) == (
            "error: no discovered device with serial 'NOBODY' (see `ttcs devices discovered`)")
        assert "99999" in _one_line_error(err_area)

        adopted = await cli.json("devices", "adopt", serials[0], "--area", "19900",
                                 "--village", "19900-01", "--name", "Loa đầu làng")
        assert (adopted["serial"], adopted["plugin"], adopted["kind"]) == (
            serials[0], "native", "ip_speaker")
        assert (adopted["area_code"], adopted["village_code"], adopted["name"]) == (
            "19900", "19900-01", "Loa đầu làng")
        _, out, _ = await cli.run("devices", "adopt", serials[1], "--area", "19900")
        assert out.strip() == f"adopted native-{serials[1].lower()} into 19900"

        left, listed, status = await asyncio.gather(
            cli.json("devices", "discovered"), cli.json("devices", "list"),
            cli.json("devices", "status", adopted["id"]))
        assert left == []
        assert sorted(d["serial"] for d in listed) == sorted(serials)
        assert status["connectivity"] == "online"
        _, err_twice = await cli.fails("devices", "adopt", serials[0], "--area", "19900")
        assert "no discovered device" in err_twice
    finally:
        sim.terminate()
        await sim.wait()
