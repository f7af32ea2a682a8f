"""Complaints (投诉): severity, root cause, remedy and compensation, verification, repeats."""
