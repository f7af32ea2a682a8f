"""Channels: how outbox events reach people and systems.

The outbox (`kefu.notifications`) holds events written in the same transaction as their
cause. The worker's delivery loop (`kefu.jobs.deliver`, logic in `kefu.channels.delivery`)
takes them from there in two steps:

1. **Fan-out** (one transaction): it claims pending outbox rows (FOR UPDATE SKIP LOCKED on
   PostgreSQL), resolves each row's recipient (`staff:12`, `unit_head:5`, `unit:5`,
   `customer:9`) into concrete recipients with the channels each chose for the event
   (`kefu.channels.recipients`), asks every registered channel which targets it delivers
   the event to (`Channel.plan`), and writes one `deliveries` row per (event, channel,
   target) with its idempotency key. The outbox row becomes `sent`.
2. **Delivery** (outside any transaction): it claims due deliveries with a lease, calls
   `Channel.deliver` for each, and records the outcome: delivered; a retry later with
   exponential backoff and jitter (`RetryableError`); or dead-lettered (`PermanentError`,
   or `KEFU_DELIVERY_MAX_ATTEMPTS` attempts used). Admins retry dead letters.

Delivery is at least once: a worker that dies after sending and before recording sends
again after the lease. Every attempt of one delivery carries the same `Job.key`, so a
receiver that remembers keys drops the duplicate.

## How a channel registers

A channel is a module that defines `channel`, an object with the `Channel` protocol below,
and whose dotted name is listed in `CHANNEL_MODULES` in `kefu.channels.base` (one line;
the registry imports the modules on first use)::

    # kefu/mail/outgoing.py
    from kefu.channels.base import Job, Planned, PlannedEvent, PermanentError, RetryableError

    class EmailChannel:
        name = "email"                          # unique, at most 20 characters
        audiences = frozenset({"staff", "customer"})   # recipients it can reach
        default_topics = None                   # None: every event type by default;
                                                # or a frozenset of topics on by default
        def plan(self, session, events):        # inside the fan-out transaction
            for pe in events:                   # PlannedEvent: event + recipients
                for r in pe.recipients:
                    if self.name in r.channels:     # preferences already applied
                        yield Planned(pe.event.id, f"{r.kind}:{r.id}", {"locale": r.locale})
        def deliver(self, job, ctx):            # outside any transaction
            ...send; raise RetryableError("421 try later") or PermanentError("550 no user")
            return "250 OK"                     # short note for the delivery log

    channel = EmailChannel()

`plan` may read the database with the session it gets (batch-wise, please: it is called
for up to `KEFU_DELIVERY_BATCH_SIZE` events at once) and returns `Planned(event_id,
target, data)` rows; `data` (JSON) is stored on the delivery and handed back in
`Job.data`, so `deliver` rarely needs the database (when it does, `ctx.factory` is a
session factory). A channel whose delivery *is* a row in Kefu's own database (in-app
notices) writes it in `plan` and returns nothing. `deliver` must finish before
`ctx.deadline` (a `time.monotonic()` value): the lease of the claim ends soon after.
Staff choose per event type whether a channel of their audience reaches them
(`notification_preferences`; absent means `default_topics`).
"""
