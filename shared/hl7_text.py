"""Text inside an HL7 v2 field, for messages Vigil writes (the gateway's answers, the
simulator's ORU^R01s)."""

from __future__ import annotations

# HL7's escape sequences for the default delimiters (v2.6, 2.7.4); the escape character first,
# so the others' escapes are not escaped again.
_ESCAPES = (("\\", "\\E\\"), ("|", "\\F\\"), ("^", "\\S\\"), ("~", "\\R\\"), ("&", "\\T\\"))


def escape(text: str) -> str:
    """`text` as one field's content: delimiters escaped, control characters (a CR would end
    the segment) as spaces. Non-ASCII text stays as it is, for a UTF-8 message."""
    for char, sequence in _ESCAPES:
        text = text.replace(char, sequence)
    return "".join(c if c.isprintable() else " " for c in text)
