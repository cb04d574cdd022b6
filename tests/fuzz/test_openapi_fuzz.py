"""Schemathesis against the app's own OpenAPI document, with a valid staff token: no request gets a 5xx.

The webhooks are left out here (they are fuzzed with real signatures in test_webhook_fuzz);
every other operation is called with what the schema allows. Schemathesis's own pytest
integration (from_fixture) does not run under pytest 9, so its strategies drive Hypothesis here.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import given
from hypothesis import settings as hypothesis_settings

from tests.fuzz.conftest import FuzzHub

pytestmark = pytest.mark.fuzz


def test_no_operation_answers_with_a_server_error(fuzz_hub: FuzzHub) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_hub.client.app).exclude(path_regex=r"^/webhooks/")
    headers = {"Authorization": f"Bearer {fuzz_hub.token}"}
    examples = max(5, hypothesis_settings.default.max_examples // 4)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(max_examples=examples)
        def call(case: Any) -> None:
            response = case.call(headers=headers)
            assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.text[:300]}"

        try:
            call()
        except AssertionError as error:
            failures.append(str(error).splitlines()[0])
    assert not failures, "\n".join(failures)
