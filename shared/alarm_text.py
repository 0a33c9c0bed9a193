"""The title and text of the notification an alarm sends, as it is raised or escalated.

The analysis downstream files a text by its words (data_app/alert_text.py says which), so an
alarm's wording follows its priority: "Critical" and "Urgent" for a high one, "Warning" and
"attention" for a medium one, neither for a low one. A vital is named plainly, never by the
names the classifier takes for critical.
"""

from __future__ import annotations

from shared.alarm_limits import Parameter
from shared.alarms import Condition, Priority, Side

MAX_NAME = 120  # keeps the title under 200 and the text under 1000 characters

_UNITS: dict[Parameter, str] = {
    Parameter.PULSE: " bpm",
    Parameter.RESP_RATE: "/min",
    Parameter.SPO2: "%",
    Parameter.SYSTOLIC: " mmHg",
    Parameter.TEMPERATURE: " °C",
}

_OPENINGS: dict[str, tuple[str, str]] = {
    Priority.HIGH: ("Critical", "Urgent clinical review."),
    Priority.MEDIUM: ("Warning", "Needs attention: please review."),
}


def display_name(patient_name: str) -> str:
    """One line, and short enough for a pager's title."""
    name = " ".join(patient_name.split()) or "Unnamed patient"
    return name if len(name) <= MAX_NAME else name[: MAX_NAME - 1].rstrip() + "…"


def reading(parameter: Parameter, value: float) -> str:
    """A value with its unit: `SpO2 84%`, `pulse 131 bpm`."""
    return f"{_label(parameter)} {value:g}{_UNITS[parameter]}"


def alarm_message(
    patient_name: str, condition: Condition, priority: str, value: float, limit: float
) -> tuple[str, str]:
    """(title, text) for a physiological alarm raised, or raised again at a higher priority."""
    name = display_name(patient_name)
    side = "below" if condition.side is Side.LOW else "above"
    unit = _UNITS[condition.parameter]
    finding = f"{reading(condition.parameter, value)}, {side} the alarm limit of {limit:g}{unit}"
    opening, closing = _OPENINGS.get(priority, ("Alarm", "Please review."))
    return (
        f"{name}: {condition.text} ({priority} priority)",
        f"{opening}: {condition.text} alarm for {name}: {finding}. {closing}",
    )


def escalation_message(
    patient_name: str, condition_text: str, level: int, minutes: float
) -> tuple[str, str]:
    """(title, text) for a high alarm nobody acknowledged: sent again, more urgently."""
    name = display_name(patient_name)
    return (
        f"{name}: {condition_text} unacknowledged (escalation {level})",
        f"Critical: the {condition_text} alarm for {name} has not been acknowledged for "
        f"{minutes:.0f} min (escalation level {level}). Urgent clinical review.",
    )


def no_data_message(patient_name: str, silent_seconds: float) -> tuple[str, str]:
    """(title, text) for a monitor that stopped sending: a technical alarm, medium."""
    name = display_name(patient_name)
    return (
        f"{name}: No data (medium priority)",
        f"Warning: no vitals from the monitor of {name} for {silent_seconds:.0f} s. "
        "Check the monitor, its sensors and its connection; needs attention.",
    )


def invalid_data_message(patient_name: str, refused: int) -> tuple[str, str]:
    """(title, text) for a monitor whose samples keep being refused: technical, low."""
    name = display_name(patient_name)
    return (
        f"{name}: Invalid data (low priority)",
        f"The last {refused} samples from the monitor of {name} could not be stored and went "
        "to the dead-letter topic. Check the monitor's configuration and its interface.",
    )


def _label(parameter: Parameter) -> str:
    return {
        Parameter.PULSE: "pulse",
        Parameter.RESP_RATE: "respiration rate",
        Parameter.SPO2: "SpO2",
        Parameter.SYSTOLIC: "systolic BP",
        Parameter.TEMPERATURE: "temperature",
    }[parameter]
