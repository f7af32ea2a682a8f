"""Loyalty: retention, repeat contacts and the churn-risk list, each explained."""
