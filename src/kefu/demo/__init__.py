"""Demo data: a realistic organisation, so every page shows something true on first start.

Later capabilities add their own builders to `BUILDERS`; `kefu demo` runs them in order.
"""
