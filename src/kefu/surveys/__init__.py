"""Surveys and the satisfaction index (满意度 = Σ perceived ÷ Σ expected × 100)."""
