"""HTTP and WebSocket routes; each module owns one feature's router."""
