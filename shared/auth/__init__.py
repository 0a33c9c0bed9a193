"""Who is calling: roles, signed tokens every app can verify, and the access each route declares.

monitor_app holds the accounts and signs tokens with its private key; every app verifies them
with the public key alone, so patient_app and data_app need no user table and cannot mint
tokens. monitor_app also checks each token against its database (revocation, disabled users).
"""
