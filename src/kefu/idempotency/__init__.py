"""Idempotency-Key support for creates: a retried request returns the first answer."""
