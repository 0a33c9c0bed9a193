"""Monitored patients."""
