"""analyse(): the reference classification, without HTTP."""

import os
import subprocess
import sys

import pytest

from analyser_app.analysis import (
    CONFIDENCE_RANGES,
    CRITICAL_TERMS,
    WARNING_TERMS,
    Analysis,
    analyse,
)


def assert_in_range(result: Analysis) -> None:
    low, high = CONFIDENCE_RANGES[result.category]
    assert low <= result.confidence <= high
    assert result.confidence == round(result.confidence, 2)


@pytest.mark.parametrize(
    ("word", "category"),
    [
        ("error", "critical"),
        ("exception", "critical"),
        ("failed", "critical"),
        ("warning", "warning"),
        ("attention", "warning"),
        ("careful", "warning"),
    ],
)
def test_each_trigger_word_sets_its_category_and_range(word, category):
    result = analyse(f"Monitor on bed 4: {word} reported by the device")
    assert result.category == category
    assert_in_range(result)
    assert result.keywords[0] == word


def test_ranges_are_the_reference_ones():
    assert CONFIDENCE_RANGES == {
        "critical": (0.70, 0.95),
        "warning": (0.60, 0.90),
        "info": (0.80, 0.99),
    }


@pytest.mark.parametrize("term", sorted(CRITICAL_TERMS))
def test_every_critical_term(term):
    result = analyse(f"Patient in bed 2 shows {term}")
    assert result.category == "critical"
    assert_in_range(result)


@pytest.mark.parametrize("term", sorted(WARNING_TERMS))
def test_every_warning_term(term):
    result = analyse(f"Patient in bed 2 shows {term}")
    assert result.category == "warning"
    assert_in_range(result)


def test_clinical_vitals_alert_is_not_filed_as_info():
    result = analyse("Ivan Petrov: SpO2 84% (hypoxia), pulse 128 bpm (tachycardia)")
    assert result.category == "critical"
    assert result.keywords[:2] == ["hypoxia", "tachycardia"]


def test_critical_beats_warning_and_its_terms_lead_the_keywords():
    result = analyse("Warning: tachycardia and fever, now hypotension")
    assert result.category == "critical"
    assert_in_range(result)
    assert result.keywords == ["hypotension", "warning", "tachycardia"]


@pytest.mark.parametrize(
    "text",
    [
        "ERROR in the infusion pump",
        "Error: pump stopped",
        "Two errors logged",
        "Sync failed.",
        "(exception)",
        "pump—failed—again",
        "error_code 5 FAILED",
    ],
)
def test_whole_words_any_case_and_punctuation_and_plurals(text):
    assert analyse(text).category == "critical"


@pytest.mark.parametrize(
    "text",
    [
        "terror",
        "errorless run",
        "unfailed",
        "exceptional recovery",
        "shockingly calm",
        "unwarning",
        "carefully done",
    ],
)
def test_terms_inside_longer_words_do_not_match(text):
    assert analyse(text).category == "info"


def test_info_text():
    result = analyse("Patient Ivan Petrov was admitted to bed 7 and is stable")
    assert result.category == "info"
    assert_in_range(result)
    assert result.keywords == ["admitted", "patient", "petrov"]  # "stable" ties, later


def test_text_without_usable_words_is_info_without_keywords():
    result = analyse("1234 !!!")
    assert result == Analysis(category="info", confidence=result.confidence, keywords=[])
    assert_in_range(result)


def test_same_text_same_answer():
    text = "Sepsis suspected: lactate rising, blood pressure falling"
    assert analyse(text) == analyse(text)


def test_same_answer_in_another_process_with_another_hash_seed():
    text = "Warning: fever 39.2 C in bed 5"
    code = (
        "from analyser_app.analysis import analyse; "
        f"r = analyse({text!r}); print(r.category, r.confidence, *r.keywords)"
    )
    answers = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
            timeout=60,
            check=True,
        )
        answers.add(result.stdout.strip())
    local = analyse(text)
    assert answers == {" ".join([local.category, str(local.confidence), *local.keywords])}


def test_confidence_varies_between_texts_but_stays_in_range():
    results = [analyse(f"Error number {i} on monitor") for i in range(200)]
    for result in results:
        assert_in_range(result)
    assert len({r.confidence for r in results}) > 10


def test_more_matched_terms_never_lower_the_floor():
    low, high = CONFIDENCE_RANGES["critical"]
    many = [analyse(f"Bed {i}: sepsis, shock, hypotension, arrest") for i in range(200)]
    assert all(r.category == "critical" for r in many)
    # Four matched terms draw from the top quarter of the range.
    assert min(r.confidence for r in many) >= round(low + 0.75 * (high - low), 2) - 0.01
    assert max(r.confidence for r in many) <= high


def test_odd_characters_are_fine():
    assert analyse("\ud800 lone surrogate error").category == "critical"
    assert analyse("Пациент: ошибка").keywords == ["пациент", "ошибка"]


@pytest.mark.parametrize(
    ("text", "keywords"),
    [
        # Matched terms first, deduplicated (a plural counts as its term), in order of appearance.
        ("Errors, then error repeated, then failed", ["error", "failed", "repeated"]),
        ("exception error failed urgent shock", ["exception", "error", "failed"]),
        # Then the longest other words, ties by first appearance; no stopwords or numbers.
        ("The pump in bed 12 has stopped at 03:00", ["stopped", "pump", "bed"]),
        ("Alarm: alarm ALARM", ["alarm"]),
        ("a b c 42 the and", []),
        ("SpO2 low", ["spo2", "low"]),
    ],
)
def test_keywords(text, keywords):
    assert analyse(text).keywords == keywords


def test_keywords_are_lowercase_words_of_the_text_and_at_most_three():
    text = "Critical: Bradycardia, HYPOTENSION and Unresponsive patient after Sedation"
    result = analyse(text)
    assert len(result.keywords) == 3
    assert result.keywords == ["critical", "hypotension", "unresponsive"]
    assert all(k == k.lower() and k in text.lower() for k in result.keywords)
