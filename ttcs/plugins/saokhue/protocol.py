"""The Sao Khuê Radio station protocol (SKR MQTT v2), as the device speaks it on the wire.

Topics (``{sn}`` is the serial printed on the module; full description in
``docs/plugins/saokhue.md``)::

    skr/v2/up/{sn}/online   device→hub  Presence, retained; also the last will ({"on": 0})
    skr/v2/up/{sn}/info     device→hub  Info, retained, on every connect
    skr/v2/up/{sn}/hb       device→hub  Heartbeat, QoS 0, every ``chu_ky`` s and on change
    skr/v2/up/{sn}/ack      device→hub  Ack, QoS 1, one per command (``msg_id``)
    skr/v2/up/{sn}/rpt      device→hub  Report (proof of play, missed slots), QoS 1
    skr/v2/dn/{sn}          hub→device  a Downlink command, QoS 1

Times on the wire are Unix seconds by the device clock (``ts``); schedule dates and times are
local to the device (``mui_gio``, hours east of UTC; +7 in Vietnam). Field names follow the
vendor's firmware (Vietnamese abbreviations); the models ignore fields they do not know, as
the firmware adds fields between versions.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

PREFIX = "skr/v2"
UPLINK_FILTER = f"{PREFIX}/up/+/+"
#: longest id the firmware stores (msg_id, ma_lich, ma_nd, ma_ct)
MAX_ID = 40
#: how many schedule items the firmware's table holds
MAX_ITEMS = 50


def up_topic(serial: str, leaf: str) -> str:
    return f"{PREFIX}/up/{serial}/{leaf}"


def down_topic(serial: str) -> str:
    return f"{PREFIX}/dn/{serial}"


def short_id(prefix: str, text: str) -> str:
    """A stable id of at most :data:`MAX_ID` characters for ``text``."""
    return f"{prefix}{hashlib.sha256(text.encode()).hexdigest()[:MAX_ID - len(prefix) - 8]}"


def wire_id(value: str | None, prefix: str) -> str | None:
    """``value`` if the firmware can store it as is, else a stable short id."""
    if value is None:
        return None
    if len(value) <= MAX_ID and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]*", value):
        return value
    return short_id(prefix, value)


class Wire(BaseModel):
    """Base of every wire message: unknown fields are ignored (newer firmware adds some)."""

    model_config = ConfigDict(extra="ignore")


WireId = Annotated[str, Field(min_length=1, max_length=MAX_ID)]

# -- device → hub -------------------------------------------------------------------------------


class Presence(Wire):
    """``online`` (retained). The device sets ``{"on": 0, "ly_do": "lwt"}`` as its will."""

    on: Literal[0, 1]
    ts: int | None = None
    ly_do: str | None = None  # ket_noi (connected), ngat (clean disconnect), lwt


class Info(Wire):
    """``info`` (retained): who the device is, published on every connect."""

    sn: WireId
    mac: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    imei: str | None = None
    iccid: str | None = None
    model: str = Field(min_length=1, max_length=60)
    fw: str = Field(min_length=1, max_length=60)
    hw: str | None = None
    cap: list[str] = Field(default_factory=list)
    chu_ky: float = Field(default=60, gt=0, le=3600, description="heartbeat period, s")
    mui_gio: int = Field(default=7, ge=-12, le=14, description="local time, hours from UTC")
    ts: int | None = None


class Playing(Wire):
    ma_lich: WireId
    ma_nd: str | None = None
    uu_tien: int = Field(ge=1, le=3)
    nguon: Literal["lich", "truc_tiep", "thu"] = "truc_tiep"


class Heartbeat(Wire):
    """``hb``: the device's state, every ``chu_ky`` seconds and whenever it changes."""

    sn: WireId
    ts: int = Field(description="device clock, Unix seconds")
    fw: str
    ip: str | None = None
    csq: int | None = Field(default=None, ge=0, le=99, description="3GPP CSQ, 99 unknown")
    rssi: int | None = Field(default=None, ge=-140, le=0, description="dBm")
    vol: int = Field(ge=0, le=100)
    nguon: Literal["dien", "pin"] = "dien"  # mains / battery
    pin: int | None = Field(default=None, ge=0, le=100)
    nhiet: float | None = None
    dang_phat: Playing | None = None
    lich_ver: str | None = None
    so_lich: int = Field(default=0, ge=0)
    cb: list[str] = Field(default_factory=list, description="active alarms, e.g. mo_tu")
    chu_ky: float | None = Field(default=None, gt=0, le=3600)


class Ack(Wire):
    """``ack``: the answer to one command, by its ``msg_id``; ``kq`` 0 is success."""

    msg_id: WireId
    kq: int
    loi: str = ""
    mo_ta: str | None = None
    ma_lich: str | None = None
    ds_ma_lich: list[str] | None = None
    lich_ver: str | None = None
    vol: int | None = Field(default=None, ge=0, le=100)
    ts: int | None = None


ReportKind = Literal["bat_dau", "ket_thuc", "loi", "ngat", "dung", "bo_lo"]


class Report(Wire):
    """``rpt``: proof of play. ``stt`` counts up per device across reboots (kept in flash);
    reports made while offline are kept and sent, in order, after reconnecting."""

    stt: int = Field(ge=0)
    loai: ReportKind
    ma_lich: WireId
    ma_nd: str | None = None
    ma_ct: str | None = None
    nguon: Literal["lich", "truc_tiep", "thu"] = "truc_tiep"
    gio_lich: int | None = Field(default=None, description="the slot, for scheduled items")
    ts: int
    ly_do: str | None = None


# -- hub → device -------------------------------------------------------------------------------


class _Down(Wire):
    msg_id: WireId
    ts: int
    han: int | None = Field(default=None, description="drop the command after this time")


class PlayDown(_Down):
    lenh: Literal["phat"] = "phat"
    ma_lich: WireId
    ma_nd: str | None = Field(default=None, max_length=MAX_ID)
    ma_ct: str | None = Field(default=None, max_length=MAX_ID)
    url: str = Field(min_length=1, max_length=1000)
    luong: bool = Field(default=False, description="a live stream: no checksum, no length")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    kich_thuoc: int | None = Field(default=None, ge=0)
    thoi_luong: float | None = Field(default=None, ge=0)
    lap: int = Field(default=1, ge=1, le=100)
    uu_tien: int = Field(default=1, ge=1, le=3)
    vol: int | None = Field(default=None, ge=0, le=100)


class StopDown(_Down):
    lenh: Literal["dung"] = "dung"
    ma_lich: str | None = None
    ma_nd: str | None = None


class VolumeDown(_Down):
    lenh: Literal["am_luong"] = "am_luong"
    vol: int = Field(ge=0, le=100)


class ScheduleItem(Wire):
    """One row of the device's schedule table: what plays, on which dates, weekdays, times.

    ``thu`` uses the Vietnamese weekday numbers: 2 = thứ Hai (Monday) … 7 = thứ Bảy,
    8 = Chủ nhật (Sunday). ``gio`` are local times ``HH:MM:SS``.
    """

    ma_lich: WireId
    ma_nd: str | None = Field(default=None, max_length=MAX_ID)
    ma_ct: str | None = Field(default=None, max_length=MAX_ID)
    url: str = Field(min_length=1, max_length=1000)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    kich_thuoc: int = Field(ge=0)
    thoi_luong: float = Field(ge=0)
    uu_tien: int = Field(default=1, ge=1, le=3)
    vol: int | None = Field(default=None, ge=0, le=100)
    lap: int = Field(default=1, ge=1, le=100)
    tu_ngay: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    den_ngay: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    thu: list[int] = Field(min_length=1, max_length=7)
    gio: list[str] = Field(min_length=1, max_length=48)


class ScheduleDown(_Down):
    """Replace the whole schedule table (atomically: all items are fetched and checked first)."""

    lenh: Literal["dat_lich"] = "dat_lich"
    lich_ver: str = Field(min_length=1, max_length=MAX_ID)
    ds: list[ScheduleItem]


class RebootDown(_Down):
    lenh: Literal["khoi_dong_lai"] = "khoi_dong_lai"


class ClockDown(_Down):
    """Set the device clock to ``ts`` (the hub's clock)."""

    lenh: Literal["dong_bo_gio"] = "dong_bo_gio"


class QueryDown(_Down):
    """Ask for a heartbeat now."""

    lenh: Literal["hoi_tt"] = "hoi_tt"


class ToneDown(_Down):
    lenh: Literal["phat_thu"] = "phat_thu"
    giay: float = Field(gt=0, le=60)
    tan_so: int = Field(ge=20, le=20000)


Downlink = Annotated[PlayDown | StopDown | VolumeDown | ScheduleDown | RebootDown | ClockDown
                     | QueryDown | ToneDown, Field(discriminator="lenh")]
DOWNLINK: TypeAdapter[Downlink] = TypeAdapter(Downlink)

# -- result codes -------------------------------------------------------------------------------

OK = 0
BAD_REQUEST = 1  # sai_lenh
BUSY = 2  # dang_ban: a higher-priority item plays
CHECKSUM = 3  # sai_ma_kiem: the media is not what the command says
FETCH_FAILED = 4  # loi_tai: media server unreachable or answered an error
TABLE_FULL = 5  # lich_day
EXPIRED = 6  # het_han: arrived after ``han`` by the device clock
UNSUPPORTED = 7  # khong_ho_tro

CODE_NAMES = {OK: "", BAD_REQUEST: "sai_lenh", BUSY: "dang_ban", CHECKSUM: "sai_ma_kiem",
              FETCH_FAILED: "loi_tai", TABLE_FULL: "lich_day", EXPIRED: "het_han",
              UNSUPPORTED: "khong_ho_tro"}

#: capability words in ``Info.cap``
CAP_WORDS = ("phat", "luong", "am_luong", "lich", "khoi_dong", "thu_loa")


def dumps(message: BaseModel) -> str:
    return message.model_dump_json(exclude_none=True)


def peek_msg_id(payload: bytes) -> str | None:
    """The ``msg_id`` of a command the device cannot parse, to answer it with an error."""
    import json

    try:
        data: Any = json.loads(payload)
    except ValueError:
        return None
    value = data.get("msg_id") if isinstance(data, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= MAX_ID else None
