"""Figures for the content library: espeak-ng per voice, the render cache, the dispatch check.

    .venv/bin/python bench/bench_content_tts.py [--words 100] [--rounds 5]

Prints one JSON line (milliseconds); never used as an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from common import emit

from ttcs.core.config import Settings
from ttcs.core.content import ContentDraft, EspeakEngine, parse_wav
from ttcs.core.hub import Hub
from ttcs.schemas import Area, AreaType, IssuingLevel

SENTENCE = ("Kính thưa bà con nhân dân trong xã, sáng mai trạm y tế xã tổ chức tiêm chủng "
            "mở rộng cho trẻ em dưới năm tuổi tại nhà văn hóa thôn. ")


def words(n: int) -> str:
    vocab = SENTENCE.split()
    return " ".join(vocab[i % len(vocab)] for i in range(n))


async def main(n_words: int, rounds: int) -> None:
    text = words(n_words)
    engine = EspeakEngine()
    figures: dict[str, object] = {"words": n_words, "rounds": rounds}
    voices: dict[str, dict[str, float]] = {}
    for voice in [v.name for v in engine.voices]:
        times, seconds = [], 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            wav = await engine.synthesize(text, voice)
            times.append(time.perf_counter() - t0)
            seconds = parse_wav(wav).duration
        voices[voice] = {"median_ms": round(statistics.median(times) * 1000, 1),
                         "min_ms": round(min(times) * 1000, 1),
                         "max_ms": round(max(times) * 1000, 1),
                         "audio_seconds": round(seconds, 1)}
    figures["espeak_ng"] = voices
    with tempfile.TemporaryDirectory() as home:
        hub = Hub(Settings(home=Path(home)))
        await hub.open()
        try:
            await hub.registry.import_areas([
                Area(code="46", name="Huế", type=AreaType.MUNICIPALITY),
                Area(code="20101", name="Phú Vinh", type=AreaType.COMMUNE, parent_code="46")],
                "bench")
            await hub.content.approvers.add("chu-tich", IssuingLevel.COMMUNE, "20101", "bench")
            speech = hub.content.speech
            t0 = time.perf_counter()
            first = await speech.render(text, "espeak-ng", "vi-vn-x-central")
            miss = time.perf_counter() - t0
            hits = []
            for _ in range(max(rounds, 20)):
                t0 = time.perf_counter()
                await speech.render(text, "espeak-ng", "vi-vn-x-central")
                hits.append(time.perf_counter() - t0)
            figures["render_miss_ms"] = round(miss * 1000, 1)  # synthesise + store + index
            figures["render_hit_median_ms"] = round(statistics.median(hits) * 1000, 2)
            figures["render_bytes"] = first.size
            item = await hub.content.add(ContentDraft(title="bench", text=text,
                                                      issuer="UBND", area_code="20101"),
                                         "bench")
            await hub.content.submit(item.id, "bench")
            item = await hub.content.approve(item.id, "chu-tich", "bench")
            checks = []
            for _ in range(200):
                t0 = time.perf_counter()
                await hub.content.verify_approval(item)
                checks.append(time.perf_counter() - t0)
            figures["verify_approval_sqlite_median_ms"] = round(
                statistics.median(checks) * 1000, 2)
            plays = []
            for _ in range(50):
                t0 = time.perf_counter()
                await hub.content.playable(item, "20101")
                plays.append(time.perf_counter() - t0)
            # verify + cached TTS + signed URL + render token
            figures["playable_median_ms"] = round(statistics.median(plays) * 1000, 2)
        finally:
            await hub.stop()
    emit("content_tts", **figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    ns = parser.parse_args()
    asyncio.run(main(ns.words, ns.rounds))
