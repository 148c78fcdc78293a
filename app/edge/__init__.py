"""The HTTP edge: what every request passes through on its way in and out of the
routes (request ids, security headers, cross-origin reads, access logs, metrics)."""
