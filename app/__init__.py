"""Physical therapist directory search API."""
