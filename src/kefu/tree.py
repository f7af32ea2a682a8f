"""Materialised-path trees (units, customer groups): one mechanism for both.

A node's `path` lists the ids from the root down ("/1/5/23/"); its `depth` counts the
ancestors. A subtree is one range scan; moving a subtree is one UPDATE of the paths below.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, literal, text, update
from sqlalchemy.orm import Session

from kefu.db import is_postgres
from kefu.scope import path_in_subtree


def placeholder_path() -> str:
    """A unique path for a new node until its id is known."""
    return f"~new-{uuid.uuid4().hex}"


def child_path(parent_path: str | None, node_id: int) -> str:
    return f"{parent_path or '/'}{node_id}/"


def would_cycle(node_path: str, new_parent_path: str) -> bool:
    """Hanging the node at `node_path` under `new_parent_path` makes it its own ancestor."""
    return new_parent_path.startswith(node_path)


def ancestor_ids(path: str) -> list[int]:
    """Ids above the node, top first."""
    return [int(p) for p in path.strip("/").split("/")[:-1]]


def move_subtree(session: Session, model: Any, node: Any, new_parent: Any | None) -> None:
    """Re-hang `node` (and everything below it) under `new_parent` (None: a root).

    The caller checks `would_cycle` first. On PostgreSQL moves of one tree are serialised
    by an advisory lock, so two crossing moves cannot build a cycle together.
    """
    if is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
            {"k": f"kefu.tree.{model.__tablename__}"},
        )
    old_path = node.path
    new_path = child_path(new_parent.path if new_parent is not None else None, node.id)
    delta = (new_parent.depth + 1 if new_parent is not None else 0) - node.depth
    session.execute(
        update(model)
        .where(path_in_subtree(model.path, old_path))
        .values(
            path=literal(new_path) + func.substr(model.path, len(old_path) + 1),
            depth=model.depth + delta,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(model)
        .where(model.id == node.id)
        .values(parent_id=new_parent.id if new_parent is not None else None)
        .execution_options(synchronize_session=False)
    )
    session.flush()
