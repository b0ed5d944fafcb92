"""Register codec helpers: every encoding round-trips, word order matters, bad words fail."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ttcs.adapters.registers import (
    WordOrder,
    bits_from_word,
    i16_from_word,
    i16_to_word,
    i32_from_words,
    i32_to_words,
    scaled,
    text_from_words,
    text_to_words,
    u32_from_words,
    u32_to_words,
    unscaled,
    word_from_bits,
)

orders = st.sampled_from(list(WordOrder))
words = st.integers(0, 0xFFFF)


@given(st.integers(0, 0xFFFFFFFF), orders)
def test_u32_round_trips_in_either_order(value: int, order: WordOrder) -> None:
    pair = u32_to_words(value, order)
    assert all(0 <= w <= 0xFFFF for w in pair)
    assert u32_from_words(pair, order) == value


@given(st.integers(-(1 << 31), (1 << 31) - 1), orders)
def test_i32_round_trips(value: int, order: WordOrder) -> None:
    assert i32_from_words(i32_to_words(value, order), order) == value


@given(words, words)
def test_the_two_orders_swap_the_words(a: int, b: int) -> None:
    assert u32_from_words([a, b], WordOrder.LOW_FIRST) == u32_from_words(
        [b, a], WordOrder.HIGH_FIRST)


def test_low_word_first_is_cdab() -> None:
    assert u32_to_words(230400, WordOrder.LOW_FIRST) == [0x8400, 0x0003]
    assert u32_to_words(230400, WordOrder.HIGH_FIRST) == [0x0003, 0x8400]


@given(st.integers(-0x8000, 0x7FFF))
def test_i16_round_trips(value: int) -> None:
    assert i16_from_word(i16_to_word(value)) == value


def test_negative_temperature_reads_negative() -> None:
    assert scaled(i16_from_word(0xFFF6), 0.1) == -1.0


@given(st.integers(-100000, 100000), st.sampled_from([0.1, 0.01, 0.001, 1.0]))
def test_scaling_round_trips_on_the_grid(raw: int, scale: float) -> None:
    assert unscaled(scaled(raw, scale, digits=6), scale) == raw


@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16))
def test_text_round_trips(text: str) -> None:
    assert text_from_words(text_to_words(text, 8)) == text


@given(st.lists(st.sampled_from(["a", "b", "c", "d"]), unique=True))
def test_bit_names_round_trip(active: list[str]) -> None:
    names = ["a", "b", "c", "d"]
    assert sorted(bits_from_word(word_from_bits(active, names), names)) == sorted(active)


def test_an_unnamed_bit_is_reported_not_dropped() -> None:
    assert bits_from_word(0b1000_0001, ["first"]) == ["first", "bit7"]


@pytest.mark.parametrize("bad", [[1], [1, 2, 3], [0x10000, 0], [-1, 0]])
def test_wrong_words_are_value_errors(bad: list[int]) -> None:
    with pytest.raises(ValueError):
        u32_from_words(bad, WordOrder.LOW_FIRST)


def test_values_that_do_not_fit_are_refused() -> None:
    for call in (lambda: u32_to_words(1 << 32, WordOrder.LOW_FIRST),
                 lambda: i16_to_word(40000), lambda: text_to_words("x" * 17, 8),
                 lambda: text_from_words([0xC3A9]), lambda: word_from_bits(["z"], ["a"])):
        with pytest.raises(ValueError):
            call()
