"""Shared fixtures: real brokers (embedded amqtt and Mosquitto), databases, a running hub."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator, Iterator
from pathlib import Path

import pytest

from tests.support.brokers import Mosquitto
from tests.support.databases import create_scratch, drop_scratch
from tests.support.hangs import watchdog
from tests.support.media import MediaServer
from tests.support.net import free_port
from ttcs.core.broker import EmbeddedBroker
from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.core.logging import configure
from ttcs.schemas import Area, AreaType

configure(level="warning")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """A test still running after a few minutes prints its asyncio tasks (see hangs.py)."""
    with watchdog(item.nodeid):
        return (yield)


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    """A real Mosquitto for the whole session, anonymous, on its own port."""
    broker = Mosquitto().start()
    yield broker
    broker.stop()


@pytest.fixture
async def amqtt_url() -> AsyncIterator[str]:
    """The embedded (amqtt) broker, as ``make run`` uses it, on its own port."""
    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port)
    await broker.start()
    yield f"mqtt://127.0.0.1:{port}"
    await broker.stop()


@pytest.fixture(params=["amqtt", "mosquitto"])
async def broker_url(request: pytest.FixtureRequest, mosquitto: Mosquitto
                     ) -> AsyncIterator[str]:
    """Each test using this runs against both the embedded broker and real Mosquitto."""
    if request.param == "mosquitto":
        yield mosquitto.url()
        return
    port = free_port()
    broker = EmbeddedBroker("127.0.0.1", port)
    await broker.start()
    yield f"mqtt://127.0.0.1:{port}"
    await broker.stop()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A scratch PostgreSQL database, dropped afterwards."""
    url, name = await create_scratch()
    yield url
    await drop_scratch(name)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Each test using this runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    url, name = await create_scratch()
    yield url
    await drop_scratch(name)


@pytest.fixture
async def media() -> AsyncIterator[MediaServer]:
    """A small HTTP media store on its own port (``media.ref(name, data)`` publishes a file)."""
    server = await MediaServer().start()
    yield server
    await server.stop()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "var", probe_timeout=3.0, command_timeout=3.0)


SAMPLE_AREAS = [
    Area(code="46", name="Thành phố Huế", type=AreaType.MUNICIPALITY),
    Area(code="19900", name="Phường Thuận An", type=AreaType.WARD, parent_code="46"),
    Area(code="19900-01", name="Tổ dân phố 1", type=AreaType.RESIDENTIAL_GROUP,
         parent_code="19900"),
    Area(code="20014", name="Phường Hóa Châu", type=AreaType.WARD, parent_code="46"),
    Area(code="20101", name="Xã Phú Vinh", type=AreaType.COMMUNE, parent_code="46"),
    Area(code="20101-01", name="Thôn Lương Viện", type=AreaType.VILLAGE, parent_code="20101"),
]


@pytest.fixture
async def hub(settings: Settings, amqtt_url: str) -> AsyncIterator[Hub]:
    """A started hub on SQLite and the embedded broker, with a few real areas of Huế."""
    settings = settings.model_copy(update={"mqtt_url": amqtt_url})
    h = Hub(settings)
    await h.start()
    await h.registry.import_areas(SAMPLE_AREAS, "test")
    yield h
    await h.stop()
