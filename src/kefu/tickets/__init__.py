"""Tickets (工单): one-point intake, routing and linked service, SLA facts, the timeline."""
