"""The content library from the command line: add, submit, approve or reject, list, show,
verify, speak — with refusals that say what to do."""

from __future__ import annotations

import asyncio
import json
import sys
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.core.content.conftest import wav_bytes
from ttcs.cli import main
from ttcs.core.logging import configure

TTCS = str(Path(sys.executable).with_name("ttcs"))

AREAS_CSV = """code,name,type,parent_code
46,Thành phố Huế,municipality,
19900,Phường Thuận An,ward,46
20101,Xã Phú Vinh,commune,46
20101-01,Thôn Lương Viện,village,20101
"""

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def ttcs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
         ) -> Iterator[Run]:
    """``ttcs ARGS`` run in this process (the parser, handlers and store of the real CLI)."""
    monkeypatch.setenv("TTCS_HOME", str(tmp_path / "var"))
    monkeypatch.delenv("TTCS_DATABASE_URL", raising=False)

    def run(*args: str, ok: bool = True) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        if ok and code != 0:
            raise AssertionError(f"ttcs {' '.join(args)} failed ({code}): {err}")
        return code, out, err

    areas = tmp_path / "areas.csv"
    areas.write_text(AREAS_CSV, encoding="utf-8")
    run("areas", "import", str(areas))
    run("approvers", "add", "Chủ tịch UBND xã Phú Vinh", "--level", "commune", "--area", "20101")
    run("approvers", "add", "Chủ tịch UBND phường Thuận An", "--level", "commune",
        "--area", "19900")
    yield run
    # main() pointed the log output at this test's captured stderr, which closes now
    configure(level="warning", stream=sys.__stderr__)


def _json(run: Run, *args: str) -> Any:
    return json.loads(run(*args, "--json")[1])


def test_a_text_bulletin_is_added_approved_and_spoken_through_the_cli(
        ttcs: Run, tmp_path: Path) -> None:
    item = _json(ttcs, "content", "add", "--title", "Lịch tiêm chủng", "--text",
                 "Kính thưa bà con, sáng mai trạm y tế xã tổ chức tiêm chủng.",
                 "--level", "priority", "--source-level", "commune",
                 "--issuer", "UBND xã Phú Vinh", "--area", "20101")
    assert (item["kind"], item["state"], item["level"]) == ("text", "draft", "priority")
    ttcs("content", "submit", item["id"])
    _, out, _ = ttcs("content", "approve", item["id"], "--as", "Chủ tịch UBND xã Phú Vinh")
    assert "approved by Chủ tịch UBND xã Phú Vinh" in out
    listed = _json(ttcs, "content", "list", "--state", "approved")
    assert [c["id"] for c in listed] == [item["id"]]
    assert ttcs("content", "verify", item["id"])[1].strip().endswith("media verified")
    shown = json.loads(ttcs("content", "show", item["id"])[1])
    assert shown["dispatchable"] is True
    assert [h["decision"] for h in shown["history"]] == ["approved"]
    out_wav = tmp_path / "spoken.wav"
    spoken = _json(ttcs, "content", "speak", item["id"], "--area", "20101-01",
                   "--out", str(out_wav))
    assert spoken["voice"] == "vi-vn-x-central"
    with wave.open(str(out_wav)) as w:
        assert w.getnframes() / w.getframerate() == pytest.approx(spoken["seconds"], abs=0.01)


def test_refusals_exit_non_zero_with_one_line_saying_why(ttcs: Run) -> None:
    item = _json(ttcs, "content", "add", "--title", "Thông báo", "--text", "Nội dung.",
                 "--issuer", "UBND xã Phú Vinh", "--area", "20101")
    code, _, err = ttcs("content", "approve", item["id"], "--as", "Chủ tịch UBND xã Phú Vinh",
                        ok=False)
    assert code == 1
    assert err == (f"error: content {item['id']} is draft: only a submitted item can be "
                   "approved; submit it first (ttcs content submit)\n")
    ttcs("content", "submit", item["id"])
    code, _, err = ttcs("content", "approve", item["id"], "--as",
                        "Chủ tịch UBND phường Thuận An", ok=False)
    assert code == 1 and "approves only for area 19900 and below" in err
    code, _, err = ttcs("content", "verify", item["id"], ok=False)
    assert code == 1 and "is submitted, not approved" in err
    code, _, err = ttcs("content", "add", "--title", "x", "--issuer", "x", "--area", "20101",
                        ok=False)
    assert code == 1 and "--file FILE" in err


def test_an_audio_item_edited_after_approval_must_be_approved_again(
        ttcs: Run, tmp_path: Path) -> None:
    audio = tmp_path / "ban-tin.wav"
    audio.write_bytes(wav_bytes(seconds=1.0))
    item = _json(ttcs, "content", "add", "--title", "Bản tin sáng", "--file", str(audio),
                 "--issuer", "Đài truyền thanh xã Phú Vinh", "--area", "20101")
    assert item["kind"] == "audio"
    assert item["media"]["duration"] == pytest.approx(1.0)
    ttcs("content", "submit", item["id"])
    ttcs("content", "approve", item["id"], "--as", "Chủ tịch UBND xã Phú Vinh")
    ttcs("content", "edit", item["id"], "--title", "Bản tin sáng (sửa)")
    code, _, err = ttcs("content", "verify", item["id"], ok=False)
    assert code == 1 and "is draft, not approved" in err
    shown = json.loads(ttcs("content", "show", item["id"])[1])
    assert (shown["dispatchable"], shown["error"]) == (False, "ContentNotApproved")
    assert shown["media_url"].startswith("http://127.0.0.1:8080/media/")
    resubmitted = _json(ttcs, "content", "submit", item["id"])
    assert resubmitted["state"] == "submitted"
    ttcs("content", "reject", item["id"], "--as", "Chủ tịch UBND xã Phú Vinh",
         "--reason", "Sai tiêu đề")
    assert [(h["decision"], h["reason"]) for h in json.loads(
        ttcs("content", "show", item["id"])[1])["history"]] == [
            ("approved", None), ("rejected", "Sai tiêu đề")]


async def test_the_installed_ttcs_command_approves_content(ttcs: Run, tmp_path: Path) -> None:
    env = {"TTCS_HOME": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}

    async def run(*args: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            TTCS, *args, env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        return out.decode()

    item = json.loads(await run("content", "add", "--title", "Phòng chống bão",
                                "--text", "Bà con chằng chống nhà cửa.", "--level",
                                "emergency", "--issuer", "UBND xã Phú Vinh", "--area", "20101",
                                "--json"))
    await run("content", "submit", item["id"])
    assert "signed" in await run("content", "approve", item["id"], "--as",
                                 "Chủ tịch UBND xã Phú Vinh")
