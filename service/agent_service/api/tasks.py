"""Background tasks."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Response, status
from sqlalchemy import Row

from .deps import Owner, Tasks
from .errors import BODY_ERRORS, COMMON_ERRORS, ERROR
from .schemas import Task, TaskCreate

router = APIRouter(prefix="/v1/tasks", tags=["tasks"], responses=COMMON_ERRORS)
NOT_FOUND = {404: {**ERROR, "description": "Unknown task"}}
ID_ERRORS = {422: {**ERROR, "description": "Invalid id"}}


def task_out(row: Row) -> Task:
    return Task(
        id=row.id,
        status=row.status,
        priority=row.priority,
        prompt=row.prompt,
        result=row.result,
        error=row.error,
        attempts=row.attempts,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Task,
    responses={
        **BODY_ERRORS,
        409: {**ERROR, "description": "Idempotency-Key reused with a different request"},
    },
    summary="Queue a task: its prompt runs through the model; poll GET for the result",
)
async def submit_task(
    body: TaskCreate,
    owner: Owner,
    tasks: Tasks,
    response: Response,
    idempotency_key: Annotated[
        str | None, Header(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$")
    ] = None,
) -> Task:
    row = await tasks.submit(owner, body.prompt, body.priority, idempotency_key)
    response.headers["Location"] = f"/v1/tasks/{row.id}"
    return task_out(row)


@router.get("/{task_id}", response_model=Task, responses={**NOT_FOUND, **ID_ERRORS})
async def get_task(task_id: uuid.UUID, owner: Owner, tasks: Tasks) -> Task:
    return task_out(await tasks.get(owner, task_id))


@router.post(
    "/{task_id}/cancel",
    response_model=Task,
    responses={
        **NOT_FOUND,
        **ID_ERRORS,
        409: {**ERROR, "description": "Task already finished"},
    },
    summary="Cancel a queued or running task (a running task's result is discarded)",
)
async def cancel_task(task_id: uuid.UUID, owner: Owner, tasks: Tasks) -> Task:
    return task_out(await tasks.cancel(owner, task_id))
