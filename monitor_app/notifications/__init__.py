"""Notifications to clinicians and their AI analysis."""
