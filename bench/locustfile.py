"""The bench.load scenarios for Locust (FastHttpUser), for users who prefer its UI or its
distributed mode. Pick scenarios with Locust's class selection; the API key comes from
$BENCH_API_KEY (default "bench-key"):

    locust -f bench/locustfile.py --host http://127.0.0.1:8000 --headless -u 64 -r 64 -t 30s \\
        HealthUser ChatUser

Classes: HealthUser, SessionChurnUser, ChatUser, ChatStreamUser, TaskUser. Like bench.load they
wait for each answer before the next request (no think time): a closed loop.
"""

from __future__ import annotations

import itertools
import os
import time

from locust import FastHttpUser, task

AUTH = {"Authorization": f"Bearer {os.environ.get('BENCH_API_KEY', 'bench-key')}"}
FINISHED = {"succeeded", "failed", "cancelled"}
TASK_TIMEOUT = 60.0
_ids = itertools.count(1)


class _ApiUser(FastHttpUser):
    abstract = True

    def on_start(self) -> None:
        self.user_id = next(_ids)
        self.sent = 0

    def _session(self) -> str:
        response = self.client.post("/v1/sessions", json={}, headers=AUTH, name="/v1/sessions")
        return response.json()["id"]

    def _message(self) -> dict:
        self.sent += 1
        return {"content": f"user {self.user_id} says hello, message {self.sent}"}


class HealthUser(_ApiUser):
    @task
    def health(self) -> None:
        self.client.get("/health")


class SessionChurnUser(_ApiUser):
    @task
    def churn(self) -> None:
        sid = self._session()
        self.client.get(f"/v1/sessions/{sid}", headers=AUTH, name="/v1/sessions/{id}")
        self.client.delete(f"/v1/sessions/{sid}", headers=AUTH, name="/v1/sessions/{id}")


class ChatUser(_ApiUser):
    def on_start(self) -> None:
        super().on_start()
        self.sid = self._session()

    @task
    def chat(self) -> None:
        self.client.post(
            f"/v1/sessions/{self.sid}/messages",
            json=self._message(),
            headers=AUTH,
            name="/v1/sessions/{id}/messages",
        )


class ChatStreamUser(ChatUser):
    @task
    def chat(self) -> None:
        with self.client.post(
            f"/v1/sessions/{self.sid}/messages",
            json=self._message(),
            headers={**AUTH, "Accept": "text/event-stream"},
            name="/v1/sessions/{id}/messages (stream)",
            catch_response=True,
        ) as response:
            if response.status_code == 200 and b"event: done" not in (response.content or b""):
                response.failure("stream ended without a done event")


class TaskUser(_ApiUser):
    @task
    def submit_and_wait(self) -> None:
        """One submitted task, polled until it finishes, reported as one 'task' request."""
        started = time.perf_counter()
        submitted = self.client.post(
            "/v1/tasks", json={"prompt": f"task of user {self.user_id}"}, headers=AUTH
        )
        if submitted.status_code != 202:
            return
        url = f"/v1/tasks/{submitted.json()['id']}"
        status = "queued"
        while status not in FINISHED and time.perf_counter() - started < TASK_TIMEOUT:
            time.sleep(0.05)  # gevent-patched: yields to the other users
            status = self.client.get(url, headers=AUTH, name="/v1/tasks/{id}").json()["status"]
        self.environment.events.request.fire(
            request_type="TASK",
            name="submit to complete",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=None if status == "succeeded" else RuntimeError(f"task {status}"),
            context={},
        )
