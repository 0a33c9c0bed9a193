"""Code every Vigil app needs: settings, logging, database, schemas, Kafka helpers, errors."""
