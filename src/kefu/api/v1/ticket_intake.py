"""`POST /api/v1/tickets` with group commit: the intakes that arrive together are checked one
by one and committed together.

Each web process has one intake thread. The endpoint (on the event loop, no thread hand-off)
queues its request and waits; the thread takes everything queued — one request when the
desk is quiet, a dozen under load, waiting for more only while they keep coming (2 ms
apart at most) — and runs them in one
transaction: the callers' tokens, the Idempotency-Keys and the intakes are each read with
one query for the lot, and each table gets one INSERT for the lot (`open_tickets`). A
request that is refused (a bad field, an unknown token, a key used for another request)
gets its own error and writes nothing; the others go on. Every caller is answered only
after the commit, so an answer always names a stored ticket.

If the group's transaction fails as a whole — a key that another process took meanwhile,
a lost connection — each request of the group is run again alone, as without grouping,
where a key race ends in the first ticket's answer. Nothing here is shared between
processes: several web processes coordinate through the database alone (the unique
Idempotency-Key), as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kefu.api.v1.common import plain
from kefu.api.v1.deps import refused_token
from kefu.auth import service as auth
from kefu.db import unit_of_work
from kefu.errors import DomainError
from kefu.idempotency import service as idem
from kefu.scope import Viewer
from kefu.tickets import service as tickets
from kefu.tickets.schemas import TicketCreate, TicketOut

MAX_GROUP = 64  # requests per transaction, at most
# A group closes when no further request arrived for this long: the event loop parses the
# requests one by one, so without it a group would often hold just the first of a burst.
GATHER_SECONDS = 0.002
IDLE_SECONDS = 5.0  # the thread ends after this long without work (started again on demand)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


@dataclass
class Request:
    """One queued intake and where its answer goes."""

    token: str
    body: TicketCreate
    key: str | None
    endpoint: str  # "POST /api/v1/tickets": the scope of the Idempotency-Key
    location: str  # the tickets' URL prefix
    context: dict[str, str | None]  # request id and address, for the audit log
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Answer] = field(repr=False)
    locale: str | None = None  # the caller's own language, once known (for error texts)


def _answer(stored: idem.Stored, replayed: bool | None) -> Answer:
    headers = {} if replayed is None else {"Idempotent-Replayed": str(replayed).lower()}
    if stored.location:
        headers["Location"] = stored.location
    return Answer(stored.status_code, stored.body, headers)


def run_group(session: Session, group: list[Request]) -> list[Answer | DomainError | None]:
    """The group's answers in its order, in the caller's transaction. None marks a request
    whose key is in use elsewhere — by an earlier request of the group, or by another
    transaction that kept it meanwhile: it is answered after the commit (a replay)."""
    out: list[Answer | DomainError | None] = [None] * len(group)
    viewers: dict[str, Viewer | None] = {}
    wanted: list[tuple[int, Viewer, str | None, str | None]] = []  # index, viewer, key, digest
    seen: set[tuple[str, str, str]] = set()
    for i, req in enumerate(group):
        if req.token not in viewers:
            viewers[req.token] = auth.token_viewer(session, req.token)
        viewer = viewers[req.token]
        if viewer is None:
            out[i] = refused_token(req.token)
            continue
        req.locale = viewer.locale
        viewer = replace(viewer, **req.context)  # type: ignore[arg-type]
        if req.key is None:
            wanted.append((i, viewer, None, None))
            continue
        try:
            key = idem.check_key(req.key)
        except DomainError as exc:
            out[i] = exc
            continue
        scope = (idem.principal(viewer), req.endpoint, key)
        if scope in seen:
            continue  # a retry racing its first try in this very group
        seen.add(scope)
        wanted.append((i, viewer, key, idem.fingerprint(req.body.model_dump(mode="json"))))
    # Take the keys before any work (one statement per caller, usually one in all). A key
    # another transaction holds is waited for; kept, it is answered from what it kept.
    claims: dict[tuple[str, str], dict[str, str]] = {}
    for i, viewer, given, digest in wanted:
        if given is not None:
            claims.setdefault((idem.principal(viewer), group[i].endpoint), {})[given] = digest or ""
    taken: set[tuple[str, str, str]] = set()
    kept: dict[tuple[str, str, str], Any] = {}
    for (principal, endpoint), hashes in claims.items():
        mine = idem.claim_many(session, principal, endpoint, hashes)
        taken.update((principal, endpoint, key) for key in mine)
        others = [key for key in hashes if key not in mine]
        if others:  # retries, mostly: the first answer
            for found, row in idem.find_many(session, principal, endpoint, others).items():
                kept[(principal, endpoint, found)] = row
    intakes: list[tuple[int, Viewer, str | None]] = []
    for i, viewer, given, digest in wanted:
        scope = (idem.principal(viewer), group[i].endpoint, given or "")
        hit = kept.get(scope)
        if hit is not None:
            try:
                out[i] = _answer(idem.replay(hit, digest or ""), replayed=True)
            except DomainError as exc:
                out[i] = exc
        elif given is None or scope in taken:
            intakes.append((i, viewer, given))
        # else: not kept after all (expired meanwhile): None, run alone after the commit
    opened = tickets.open_tickets(
        session,
        [
            tickets.Intake(viewer, group[i].body, group[i].body.channel or "api")
            for i, viewer, _ in intakes
        ],
    )
    answers: dict[tuple[str, str], dict[str, idem.Stored]] = {}
    refused: dict[tuple[str, str], list[str]] = {}
    for (i, viewer, given), result in zip(intakes, opened, strict=True):
        caller = (idem.principal(viewer), group[i].endpoint)
        if isinstance(result, DomainError):
            out[i] = result
            if given is not None:
                refused.setdefault(caller, []).append(given)
            continue
        req = group[i]
        stored = idem.Stored(
            201, plain(TicketOut.model_validate(result)), f"{req.location}/{result.id}"
        )
        if given is not None:
            answers.setdefault(caller, {})[given] = stored
        out[i] = _answer(stored, replayed=False if given is not None else None)
    for (principal, endpoint), stored_by_key in answers.items():
        idem.fill_many(session, principal, endpoint, stored_by_key)
    for (principal, endpoint), keys in refused.items():
        idem.release(session, principal, endpoint, keys)
    session.flush()
    return out


class IntakeQueue:
    """The web process's intake thread and its queue (see the module's docstring)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        self.factory = factory
        self._queue: queue.SimpleQueue[Request] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def submit(self, req: Request) -> Answer:
        with self._lock:
            self._queue.put(req)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="kefu-intake", daemon=True)
                self._thread.start()
        return await req.future

    def _work(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_SECONDS)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get(timeout=GATHER_SECONDS))
                except queue.Empty:
                    break
            self._answer(group, self._run(group))

    def _run(self, group: list[Request]) -> list[Answer | BaseException]:
        try:
            with unit_of_work(self.factory) as session:
                results = run_group(session, group)
        except Exception:  # the group as a whole failed: each request alone
            return [self._alone(req) for req in group]
        # Second tries of a key of this group, now that the first is stored: they replay.
        return [self._alone(req) if r is None else r for req, r in zip(group, results, strict=True)]

    def _alone(self, req: Request) -> Answer | BaseException:
        for attempt in range(2):
            try:
                with unit_of_work(self.factory) as session:
                    (result,) = run_group(session, [req])
                return result if result is not None else RuntimeError("no answer")
            except IntegrityError as exc:
                # A concurrent first try of the key won: the second attempt replays it.
                if attempt:
                    return exc
            except Exception as exc:
                return exc
        raise AssertionError("unreachable")

    @staticmethod
    def _answer(group: list[Request], results: list[Answer | BaseException]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Request, Any]]] = {}
        for req, result in zip(group, results, strict=True):
            by_loop.setdefault(req.loop, []).append((req, result))
        for loop, pairs in by_loop.items():  # one wake-up per event loop
            with contextlib.suppress(RuntimeError):  # a closed loop: its callers are gone
                loop.call_soon_threadsafe(_settle, pairs)


def _settle(pairs: list[tuple[Request, Any]]) -> None:
    for req, result in pairs:
        if req.future.done():  # the caller went away
            continue
        if isinstance(result, BaseException):
            req.future.set_exception(result)
        else:
            req.future.set_result(result)
