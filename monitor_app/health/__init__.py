"""Whether the API can serve."""
