"""schemathesis fuzzes the JSON API from its own OpenAPI document: no input may cause a 5xx.

In-process (ASGI transport), deterministic, bounded to 50 examples per operation,
positive and negative (out-of-schema) inputs; responses must also match the
document (status codes, content type, schemas).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.testclient import TestClient

from phonotheque.serve.app import ServeOptions, create_app
from tests.serve.published import build_published

CONFIG = SchemathesisConfig.from_dict(
    {"seed": 6, "generation": {"max-examples": 50, "deterministic": True}}
)


# schemathesis parametrises at collection time, so the app (and its DB) must exist then
# (its `from_fixture` does not work with pytest 9).
_TMP = Path(tempfile.mkdtemp(prefix="phono-fuzz-"))
atexit.register(shutil.rmtree, _TMP, True)
build_published(_TMP / "metadata.sqlite")
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(ServeOptions(_TMP)), config=CONFIG
)


@schema.parametrize()
def test_no_server_errors(case: schemathesis.Case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    case.validate_response(
        response,
        checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
    )


@pytest.mark.parametrize(
    "path", ["/api/search?q=%00", "/api/search?q=%ff%fe", "/api/isrc/%C0%AF", "/api/tracks/%00"]
)
def test_odd_bytes_are_client_errors_or_answers(publish_dir: Path, path: str) -> None:
    r = TestClient(create_app(ServeOptions(publish_dir))).get(path)
    assert r.status_code in (200, 400, 404)
    assert "error" in r.json() or "results" in r.json()
