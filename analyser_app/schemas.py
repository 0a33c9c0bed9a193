"""analyser_app's request and response schemas."""

from marshmallow import Schema, fields, validate

from .analysis import CATEGORIES, MAX_KEYWORDS

MAX_TEXT_LENGTH = 10_000


class TextSchema(Schema):
    """A notification's text to classify; any other field is rejected."""

    text = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_TEXT_LENGTH),
        metadata={"example": "Ivan Petrov: SpO2 84%, hypoxia"},
    )


class AnalysisSchema(Schema):
    category = fields.String(validate=validate.OneOf(CATEGORIES), metadata={"example": "critical"})
    confidence = fields.Float(metadata={"description": "Between 0 and 1.", "example": 0.87})
    keywords = fields.List(
        fields.String(),
        validate=validate.Length(max=MAX_KEYWORDS),
        metadata={
            "description": "Lowercase; the matched terms first.",
            "example": ["hypoxia", "petrov", "ivan"],
        },
    )


class HealthSchema(Schema):
    status = fields.String(metadata={"example": "ok"})
