"""Live progress of one experiment as a sequence of events, by polling the database.

A :class:`EventFeed` remembers how far it has read (a :class:`Cursor`: the last epoch row and the last
cycle row it reported). Each :meth:`EventFeed.poll` opens nothing itself: it reads, in one short
session the caller provides, the experiment's state and the epoch and cycle rows written since, and
returns them as events. The caller sleeps between polls without holding a session.

Events, in the order a poll returns them:

* ``epoch``: one training epoch was recorded (``cycle``, ``epoch``, losses, metrics, seconds).
* ``cycle``: one cycle finished (its headline numbers).
* ``status``: the first poll, and whenever status, the cancel request or ``cycles_done`` changed.
* ``end``: the experiment finished (or was deleted) and every row was reported; nothing follows.

The state is read before the rows, so a poll that sees a finished status has also seen every row the
worker wrote before finishing. Every event carries the cursor after it as its id; a client that
reconnects with it (``Last-Event-ID``) gets only what it has not seen, plus the current status.
Rows are tracked by row id, so a cycle or epoch the worker recorded again (a replaced worker redoing
it) is sent again: clients key cycles by ``index`` and epochs by ``(cycle, epoch)``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import TypeAdapter
from sqlalchemy import func, select
from sqlalchemy.orm import Session, load_only

from backend.models import Cycle, EpochRow, Experiment, Status
from backend.progress import ProgressDetail
from backend.schemas import MAX_ID, CycleSummary, EpochOut
from backend.service.errors import InvalidInput
from backend.service.queries import CYCLE_SUMMARY_COLUMNS

EventKind = Literal["status", "epoch", "cycle", "end"]
#: Most rows of each kind one poll reads (a reconnect to a long experiment catches up over a few polls).
BATCH = 500
_JSON = TypeAdapter(dict[str, Any])
#: A cursor exactly as :meth:`Cursor.token` writes it: two row ids (0 or decimal without a leading zero).
_CURSOR = re.compile(r"(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,9})")
#: The experiment columns a ``status`` event carries.
STATUS_FIELDS = ("status", "cancel_requested", "progress", "cycles_done", "stop_reason", "error")


@dataclass(frozen=True)
class Cursor:
    """How far a client has read: the ids of the last epoch row and the last cycle row it was sent."""

    epoch_id: int = 0
    cycle_id: int = 0

    def token(self) -> str:
        """The cursor as an event id, ``"<epoch row id>.<cycle row id>"``."""
        return f"{self.epoch_id}.{self.cycle_id}"

    @classmethod
    def parse(cls, token: str | None, *, field: tuple[str, ...] = ("query", "since")) -> Cursor:
        """A cursor from an event id; ``None`` or an empty string is the start.

        Args:
            token: an id this module produced, exactly (no spaces, signs or leading zeros; each row id at
                most :data:`~backend.schemas.MAX_ID`).
            field: where the token came from, named in the error.

        Raises:
            InvalidInput: the token is not ``"<int>.<int>"`` as :meth:`token` writes it.
        """
        if not token:
            return cls()
        match = _CURSOR.fullmatch(token)
        if match is None or max(int(match.group(1)), int(match.group(2))) > MAX_ID:
            raise InvalidInput(
                field, f"'{token[:40]}' is not an event id (expected '<int>.<int>', as an event's id)"
            )
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def resume(cls, last_event_id: str | None) -> Cursor:
        """The cursor a browser's ``Last-Event-ID`` header names; one this server never wrote is the start.

        A browser sends back whatever id it last saw, so a bad one is not the client's fault to report:
        the stream replays from the beginning (clients key epochs and cycles, so a replay is harmless).
        """
        try:
            return cls.parse(last_event_id, field=("header", "last-event-id"))
        except InvalidInput:
            return cls()


@dataclass(frozen=True)
class Event:
    """One server-sent event: its name, JSON data and id (the cursor after it)."""

    kind: EventKind
    data: dict[str, Any]
    id: str

    def encode(self) -> str:
        """The event in ``text/event-stream`` framing (non-finite floats become ``null``)."""
        return f"id: {self.id}\nevent: {self.kind}\ndata: {_JSON.dump_json(self.data).decode()}\n\n"


@dataclass
class EventFeed:
    """The events of one experiment, poll by poll.

    Args:
        experiment_id: the experiment followed.
        cursor: where the client is; default the start (every epoch and cycle so far).
    """

    experiment_id: int
    cursor: Cursor = field(default_factory=Cursor)
    finished: bool = False
    _last_status: tuple[Any, ...] | None = None

    def poll(self, session: Session) -> list[Event]:
        """The events since the last poll; after an ``end`` event, always none.

        Args:
            session: a session to read with (the caller opens and closes it around each poll).
        """
        if self.finished:
            return []
        state = session.execute(
            select(*(getattr(Experiment, name) for name in STATUS_FIELDS), Experiment.progress_detail).where(
                Experiment.id == self.experiment_id
            )
        ).one_or_none()
        if state is None:
            self.finished = True
            return [self._event("end", {"id": self.experiment_id, "status": None, "reason": "deleted"})]
        epochs, cycles = self._epochs(session), self._cycles(session)
        caught_up = len(epochs) < BATCH and len(cycles) < BATCH
        events = epochs + cycles
        *columns, detail = state
        status = dict(zip(STATUS_FIELDS, columns, strict=True))
        # the worker's stage after training (e.g. "benchmarking" the TFLite models), None while training
        status["stage"] = ProgressDetail.read(detail).stage
        key = (status["status"], status["cancel_requested"], status["cycles_done"], status["stage"])
        if key != self._last_status:
            self._last_status = key
            events.append(self._event("status", {"id": self.experiment_id, **status}))
        if caught_up and Status(status["status"]).finished:
            self.finished = True
            events.append(self._event("end", {"id": self.experiment_id, "status": status["status"]}))
        return events

    def _event(self, kind: EventKind, data: dict[str, Any]) -> Event:
        return Event(kind=kind, data=data, id=self.cursor.token())

    def _epochs(self, session: Session) -> list[Event]:
        rows = session.scalars(
            select(EpochRow)
            .where(EpochRow.experiment_id == self.experiment_id, EpochRow.id > self.cursor.epoch_id)
            .order_by(EpochRow.id)
            .limit(BATCH)
        ).all()
        events = []
        for row in rows:
            self.cursor = Cursor(row.id, self.cursor.cycle_id)
            events.append(self._event("epoch", EpochOut.model_validate(row).model_dump()))
        return events

    def _cycles(self, session: Session) -> list[Event]:
        rows = session.scalars(
            select(Cycle)
            .options(load_only(*CYCLE_SUMMARY_COLUMNS))
            .where(Cycle.experiment_id == self.experiment_id, Cycle.id > self.cursor.cycle_id)
            .order_by(Cycle.id)
            .limit(BATCH)
        ).all()
        events = []
        for row in rows:
            self.cursor = Cursor(self.cursor.epoch_id, row.id)
            events.append(self._event("cycle", CycleSummary.model_validate(row).model_dump()))
        return events


def experiment_versions(session: Session, experiment_ids: Collection[int]) -> dict[int, Hashable]:
    """A version of each experiment that changes whenever a feed of it would have something new.

    One query for all of them: the columns a ``status`` event carries, the worker's stage, and the
    newest epoch and cycle row ids (a recorded or re-recorded row has a higher id).

    Args:
        session: a session to read with.
        experiment_ids: the experiments followed.

    Returns:
        Per experiment that exists, a hashable version; an id that is missing no longer exists.
    """
    newest_epoch = select(func.max(EpochRow.id)).where(EpochRow.experiment_id == Experiment.id)
    newest_cycle = select(func.max(Cycle.id)).where(Cycle.experiment_id == Experiment.id)
    rows = session.execute(
        select(
            Experiment.id,
            *(getattr(Experiment, name) for name in STATUS_FIELDS),
            Experiment.progress_detail,
            newest_epoch.scalar_subquery(),
            newest_cycle.scalar_subquery(),
        ).where(Experiment.id.in_(list(experiment_ids)))
    ).all()
    versions: dict[int, Hashable] = {}
    for experiment_id, *columns in rows:
        detail = columns[len(STATUS_FIELDS)]
        stage = ProgressDetail.read(detail).stage
        versions[experiment_id] = (*columns[: len(STATUS_FIELDS)], stage, *columns[len(STATUS_FIELDS) + 1 :])
    return versions
