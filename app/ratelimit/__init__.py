"""Per-client limits on public reads: GCRA in memory or in Redis, behind an ASGI middleware."""
