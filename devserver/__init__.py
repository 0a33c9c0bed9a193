"""Servers for development, tests and benchmarks, never for a hospital's deployment.

The embedded Kafka-protocol broker (tansu) and Redis that `make run` starts, Apache Kafka and
PostgreSQL as the tests run them, and helpers that start Vigil's own apps as processes. The
apps themselves import nothing from here.
"""
