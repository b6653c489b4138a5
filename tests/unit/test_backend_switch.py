"""A host switches backends by settings alone; status and doctor follow (issue #11)."""

from __future__ import annotations

import contextlib
import json
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from offchat_notify import notify_admins
from offchat_notify.backends.dramatiq.sender import flush
from offchat_notify.models import Event, Notification

pytestmark = pytest.mark.django_db(transaction=True)

DOTTED = "offchat_notify.backends.dramatiq.backend.DramatiqBackend"

#: backend -> (delivered when notify returns, reports a queue)
BACKENDS = {
    "sync": (True, False),
    "eager": (True, False),
    "dramatiq": (False, True),
    DOTTED: (False, True),
    "tests.unit.test_backend_switch.HostBackend": (True, False),
}
if getattr(settings, "TASKS_FRAMEWORK", None):
    BACKENDS["tasks"] = (True, False)  # the test TASKS alias is an ImmediateBackend


def _host_backend() -> type:
    from offchat_notify.backends.base import BaseBackend
    from offchat_notify.backends.jobs import run

    class HostBackend(BaseBackend):
        """A host's own backend, named by its dotted path."""

        def enqueue(self, job: str, *args: object) -> None:
            run(job, args, enqueue=self.enqueue)

    return HostBackend


HostBackend = _host_backend()


@pytest.fixture
def stub_broker(use_broker):
    from dramatiq.brokers.stub import StubBroker

    from tests.helpers import broker_middleware

    broker = StubBroker(middleware=broker_middleware())
    broker.emit_after("process_boot")
    return use_broker(broker)


def doctor() -> str:
    out = StringIO()
    # An error finding (no scheduler runs here) exits 1; the report is what is checked.
    with contextlib.suppress(SystemExit):
        call_command("notify_doctor", stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_a_backend_is_switched_by_settings_alone(backend, make_users, stub_broker):
    delivered, reports_queue = BACKENDS[backend]
    make_users(3, group="admin")
    notify = {"BACKEND": backend, "SCHEDULER_LOCK_URL": ""}
    with override_settings(OFFCHAT_NOTIFY=notify):
        event = notify_admins("x")
        assert flush(timeout=5)  # the dramatiq backend sends from its thread by default
        event.refresh_from_db()
        # Then the Event is delivered in-process, or waits on the broker's queue
        assert (event.state == Event.State.DELIVERED) is delivered
        assert Notification.objects.filter(event=event).count() == (3 if delivered else 0)
        # And notify_status names the backend and shows its queue when it has one
        out = StringIO()
        call_command("notify_status", "--json", stdout=out)
        status = json.loads(out.getvalue())
        assert status["backend"] == backend
        assert (status["broker"] is not None) is reports_queue
        if reports_queue:
            (queue,) = status["broker"]["queues"]
            assert (queue["name"], queue["ready"]) == ("offchat_notify", 1)
        # And the doctor judges it by what it is, not by its name
        report = doctor()
        assert f"backend {backend!r} loads" in report
        assert ("broker answers" in report) is reports_queue
