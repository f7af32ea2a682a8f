"""Key-account tiering (大客户分级): versioned rulesets, set-based runs, tier history, pins."""
