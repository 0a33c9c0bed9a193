"""Live updates over a WebSocket: new vitals and notification changes, from Redis pub/sub."""
