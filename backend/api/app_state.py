"""Things an app keeps for all its requests, made on first use (``app.state.<name>``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from fastapi import FastAPI

Made = TypeVar("Made")
_LOCK = threading.Lock()


def made_once(app: FastAPI, name: str, make: Callable[[], Made]) -> Made:
    """``app.state.<name>``, made by ``make`` the first time it is asked for (once, even when requests
    race: routes run in the threadpool).

    Args:
        app: the app.
        name: the attribute of ``app.state``.
        make: makes the thing.

    Returns:
        The thing, the same one every time.
    """
    made: Made | None = getattr(app.state, name, None)
    if made is None:
        with _LOCK:
            made = getattr(app.state, name, None)
            if made is None:
                made = make()
                setattr(app.state, name, made)
    return made
