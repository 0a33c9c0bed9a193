"""The title and text of a NEWS2 notification to clinicians.

A text classifier downstream keys on words: "Critical" and "Urgent" mark a high-risk
rise, "Warning" and "attention" a medium one; and it takes the names of the gravest
abnormalities (hypoxaemia, hypotension, bradypnoea) for critical wherever they stand. So
a vital is named by how far out it is: those names only for a sub-score of 3 in a
high-risk alert, a plain description otherwise ("low oxygen saturation" for SpO2 94%), or
a medium alert would be filed as critical for its mildest finding. A recovery must carry
none of the alarm words, nor the name of any abnormality, or it would be taken for an
alarm itself; so it lists the latest vitals plainly.
"""

from __future__ import annotations

from data_app.alerts import AlertDecision
from shared.alarm_limits import Side
from shared.alarm_text import display_name
from shared.news2 import PARAMETERS, Band, News2, deviation, round_temperature
from shared.sample import VitalsSample

# What each side of each vital is called in any alert. None of these is a word the
# classifier takes for critical, so none can raise an alert above its band.
_TERMS: dict[tuple[str, str], str] = {
    ("resp_rate", "low"): "slow breathing",
    ("resp_rate", "high"): "tachypnoea",
    ("spo2", "low"): "low oxygen saturation",
    ("systolic", "low"): "low blood pressure",
    ("systolic", "high"): "hypertension",
    ("pulse", "low"): "bradycardia",
    ("pulse", "high"): "tachycardia",
    ("temperature", "low"): "hypothermia",
    ("temperature", "high"): "fever",
}

# Names the classifier takes for critical: only for a severe value in a high-risk alert,
# where the text is critical anyway and the name tells which vital made it so.
_SEVERE_TERMS: dict[tuple[str, str], str] = {
    ("resp_rate", "low"): "bradypnoea",
    ("spo2", "low"): "hypoxaemia",
    ("systolic", "low"): "hypotension",
}
_SEVERE_SCORE = 3  # a red score: the chart's furthest column from normal


def alert_message(
    patient_name: str, news2: News2, sample: VitalsSample, decision: AlertDecision
) -> tuple[str, str]:
    """(title, text) announcing a worsened or recovered NEWS2 band."""
    name = display_name(patient_name)
    risk = f"NEWS2 {news2.score}, {news2.band} risk"
    if decision.kind == "recovered":
        vitals = ", ".join(_vital(parameter, sample) for parameter in PARAMETERS)
        return (
            f"{name}: {risk}, recovered",
            f"{name} has recovered: NEWS2 {news2.score} ({news2.band} risk), down from "
            f"{decision.previous_band}. Latest vitals: {vitals}.",
        )
    if decision.kind != "worsened":
        raise ValueError(f"unknown alert kind {decision.kind!r}")

    change = (
        f"NEWS2 for {name} rose from {decision.previous_band} to {news2.score} ({news2.band} risk)"
    )
    if news2.band == Band.HIGH:
        opening, closing = f"Critical: {change}.", "Urgent clinical review."
    else:
        opening, closing = f"Warning: {change} and needs attention.", "Please review."
    return f"{name}: {risk}", f"{opening} {_abnormal(news2, sample)} {closing}"


def _abnormal(news2: News2, sample: VitalsSample) -> str:
    # Worst first; sorted() is stable, so ties keep the chart's order (breathing first).
    scored = sorted(
        (p for p in PARAMETERS if news2.parameters[p] > 0),
        key=lambda p: news2.parameters[p],
        reverse=True,
    )
    if not scored:
        return "No single vital is out of range."
    findings = [
        f"{_vital(p, sample)} ({_term(p, sample, news2)}, scores {news2.parameters[p]})"
        for p in scored
    ]
    return f"Abnormal vitals: {'; '.join(findings)}."


def _term(parameter: str, sample: VitalsSample, news2: News2) -> str:
    key = (parameter, _side(parameter, sample))
    # A critical name only where the alert is critical and this vital is among the reasons.
    if news2.band == Band.HIGH and news2.parameters[parameter] == _SEVERE_SCORE:
        return _SEVERE_TERMS.get(key, _TERMS[key])
    return _TERMS[key]


def _side(parameter: str, sample: VitalsSample) -> Side:
    side = deviation(parameter, getattr(sample, parameter))
    if side is None:
        raise ValueError(
            f"{parameter} {getattr(sample, parameter)!r} scores 0 in NEWS2; "
            "the score does not belong to this sample"
        )
    return side


def _vital(parameter: str, sample: VitalsSample) -> str:
    if parameter == "resp_rate":
        return f"respiration rate {sample.resp_rate}/min"
    if parameter == "spo2":
        return f"SpO2 {sample.spo2}%"
    if parameter == "systolic":
        return f"BP {sample.bp} mmHg"
    if parameter == "pulse":
        return f"pulse {sample.pulse} bpm"
    # The value the chart was scored on, so the text never contradicts its sub-score.
    return f"temperature {round_temperature(sample.temperature):.1f} °C"
