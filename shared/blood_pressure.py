"""Blood pressure as Vigil writes it everywhere it is text: "systolic/diastolic", mmHg."""


def format_bp(systolic: int, diastolic: int) -> str:
    return f"{systolic}/{diastolic}"
