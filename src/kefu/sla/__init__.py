"""SLA timers on business calendars (time zones, working hours, China's holidays and
make-up working days, unit overrides)."""
