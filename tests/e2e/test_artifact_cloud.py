"""`crm dev --artifact`: the CRM run from what `make build` built, not from the source tree,
so a packaging mistake (a module left out of the layer, a file outside a function's
folder) fails here rather than in AWS. Each function sees only its folder, the layer and
the standard library (its worker runs without site-packages)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.conftest import CloudProcess
from tests.support.artifact import built

STOP_SECONDS = 120
SCORED_WITHIN = 60.0


def test_an_http_function_and_the_consumers_after_it_run_from_the_artifact(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    built()
    cloud = CloudProcess(tmp_path_factory.mktemp("crm-artifact"))
    cloud.start("--artifact")
    try:
        assert "functions run from the artifact" in cloud.log_tail(50_000)
        token = cloud.token("demo", "admin")
        # The contacts function (HTTP, with the layer's pydantic and Powertools)...
        body = {"email": "built@example.com", "phone": "+44 20 7946 0958", "country": "GB"}
        status, _, contact = cloud.call("POST", "/contacts", token, body)
        assert status == 201, contact
        assert contact["phone"] == "+442079460958"  # phonenumbers, pruned of its geodata
        # ...then the outbox publisher (a stream consumer) puts ContactCreated on the bus,
        # and lead scoring (a bus consumer) scores the contact on it.
        deadline = time.monotonic() + SCORED_WITHIN
        score: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status, _, score = cloud.call("GET", f"/contacts/{contact['id']}/score", token)
            assert status == 200, score
            if score["model_version"] is not None:  # scored (fit only: 0 points here)
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"not scored from the artifact: {score}\n{cloud.log_tail()}")
    finally:
        assert cloud.stop(STOP_SECONDS) == 0
