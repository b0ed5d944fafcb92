"""Figures for the content library: espeak-ng per voice, the render cache, the dispatch check.

    .venv/bin/python bench/content_tts.py [--words 100] [--rounds 5]

Prints one line per figure; never used as an assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

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
    for voice in [v.name for v in engine.voices]:
        times, seconds = [], 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            wav = await engine.synthesize(text, voice)
            times.append(time.perf_counter() - t0)
            seconds = parse_wav(wav).duration
        print(f"espeak-ng {voice:16} {n_words} words: median {statistics.median(times)*1000:7.1f}"
              f" ms  (min {min(times)*1000:.1f}, max {max(times)*1000:.1f}; {seconds:.1f} s "
              "of audio)")
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
            print(f"render through the cache, miss (synthesise + store + index): "
                  f"{miss*1000:.1f} ms; hit: median {statistics.median(hits)*1000:.2f} ms "
                  f"({first.size} bytes)")
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
            print(f"verify_approval (SQLite): median {statistics.median(checks)*1000:.2f} ms")
            plays = []
            for _ in range(50):
                t0 = time.perf_counter()
                await hub.content.playable(item, "20101")
                plays.append(time.perf_counter() - t0)
            print(f"playable (verify + cached TTS + signed URL + render token): median "
                  f"{statistics.median(plays)*1000:.2f} ms")
        finally:
            await hub.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--words", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    ns = parser.parse_args()
    asyncio.run(main(ns.words, ns.rounds))
