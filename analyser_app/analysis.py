"""The reference classification of a notification's text: category, confidence, keywords.

A pure function of the text: the same text gets the same answer in every process, so a
client's retry or a second replica never changes a notification's category.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass

CRITICAL = "critical"
WARNING = "warning"
INFO = "info"
CATEGORIES = (INFO, WARNING, CRITICAL)

CRITICAL_TERMS = frozenset(
    {
        "error",
        "exception",
        "failed",
        "critical",
        "urgent",
        "emergency",
        "hypoxia",
        "hypoxaemia",
        "hypoxemia",
        "hypotension",
        "bradypnoea",
        "bradypnea",
        "arrest",
        "sepsis",
        "shock",
        "unresponsive",
    }
)
WARNING_TERMS = frozenset(
    {
        "warning",
        "attention",
        "careful",
        "tachycardia",
        "bradycardia",
        "tachypnoea",
        "tachypnea",
        "fever",
        "pyrexia",
        "hypothermia",
        "hypertension",
        "desaturation",
        "deteriorating",
        "abnormal",
    }
)

# Inclusive bounds, on the two-decimal grid the answers are rounded to.
CONFIDENCE_RANGES: dict[str, tuple[float, float]] = {
    CRITICAL: (0.70, 0.95),
    WARNING: (0.60, 0.90),
    INFO: (0.80, 0.99),
}

MAX_KEYWORDS = 3

# Words that say nothing about a notification, whatever its subject.
STOPWORDS = frozenset(
    """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself
    just me more most my no nor not now of off on once only or other our out over own same
    she should so some such than that the their them then there these they this those through
    to too under until up very was we were what when where which while who whom why will with
    would you your yours per via since also still yet
""".split()
)

# Letters and digits; punctuation and underscores separate words ("Error:" is "error").
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Analysis:
    """What the analyser answers about one text."""

    category: str
    confidence: float
    keywords: list[str]


def analyse(text: str) -> Analysis:
    """Classify `text` as info, warning or critical, with a confidence and up to 3 keywords."""
    words = _WORD.findall(text.lower())
    critical = _matched_terms(words, CRITICAL_TERMS)
    warning = _matched_terms(words, WARNING_TERMS)
    if critical:
        category, deciding, others = CRITICAL, critical, warning
    elif warning:
        category, deciding, others = WARNING, warning, []
    else:
        category, deciding, others = INFO, [], []
    # Each list is in order of first appearance; the terms that decided the category lead,
    # so a warning term earlier in the text never crowds them out.
    return Analysis(
        category=category,
        confidence=_confidence(text, category, len(deciding)),
        keywords=_keywords(words, deciding + others),
    )


def _term_for(word: str, terms: frozenset[str]) -> str | None:
    """The vocabulary term `word` is, itself or as a simple plural ("errors")."""
    if word in terms:
        return word
    if word.endswith("s") and word[:-1] in terms:
        return word[:-1]
    return None


def _matched_terms(words: list[str], terms: frozenset[str]) -> list[str]:
    """The terms among `words`, deduplicated, in order of first appearance."""
    found = (_term_for(word, terms) for word in words)
    return list(dict.fromkeys(term for term in found if term is not None))


def _confidence(text: str, category: str, matches: int) -> float:
    low, high = CONFIDENCE_RANGES[category]
    # sha256, not hash(): str hashes are salted per process, and the answer must not be.
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8])
    draw = random.Random(seed).random()  # noqa: S311  (a reproducible draw, not a secret)
    # Each extra matched term raises the floor of the draw, up to the top quarter of the range.
    floor = min(max(matches - 1, 0), 3) / 4
    value = low + (high - low) * (floor + (1 - floor) * draw)
    return min(max(round(value, 2), low), high)


def _is_usable(word: str) -> bool:
    return len(word) > 1 and word not in STOPWORDS and any(c.isalpha() for c in word)


def _keywords(words: list[str], matched: list[str]) -> list[str]:
    """The matched terms, then the longest other usable words (ties: first appearance)."""
    keywords = matched[:MAX_KEYWORDS]
    vocabulary = frozenset(matched)
    # A matched term's own words ("errors" for "error") would only repeat it.
    others = dict.fromkeys(w for w in words if _is_usable(w) and _term_for(w, vocabulary) is None)
    # sorted() is stable, so words of equal length keep their order of first appearance.
    keywords += sorted(others, key=len, reverse=True)[: MAX_KEYWORDS - len(keywords)]
    return keywords
