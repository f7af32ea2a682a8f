"""Return visits (回访): the follow-up after resolution, and periodic visits of key accounts."""
