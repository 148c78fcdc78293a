"""Schemathesis hooks for this API: loaded by tests/test_schemathesis.py, and by the CLI
through SCHEMATHESIS_HOOKS=bench.schemathesis_hooks (bench/schemathesis_live.py)."""

import schemathesis

# FHIR rosters may be uploaded as NDJSON; the upload schema says the body is any
# bytes, which Schemathesis sends as it sends text.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")
