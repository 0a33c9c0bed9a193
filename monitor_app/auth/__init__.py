"""Accounts, sign-in and the tokens and sessions that carry it (see shared/auth for access)."""
