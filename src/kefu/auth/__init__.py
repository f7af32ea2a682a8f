"""Authentication: passwords, web sessions, API tokens, login throttling."""
