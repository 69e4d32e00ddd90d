"""Schemathesis against the partner API's OpenAPI 3.1 document, in process (WSGI) with a valid
bearer token: generated requests, valid and invalid, get no 5xx, only documented status codes and
content types, and bodies that match the documented schemas. Bounded: a few examples per operation
and mode. Half the cases use a real member ID, so awards and redemptions succeed too."""

from __future__ import annotations

import schemathesis
from flask.globals import _cv_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from portal.points import ledger
from tests.portal.points_helpers import make_client, make_member, make_partner, token

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def test_partner_api_conforms_to_its_openapi_document(app, db, client):
    partner = make_partner()
    client_id, secret = make_client(partner)
    person, member = make_member(partner)
    ledger.earn(person.id, 5000, source="rule", actor="test")
    db.session.commit()
    tok = token(client, client_id, secret)
    app.config["POINTS_API_RATE_LIMIT"] = "100000 per minute"

    def isolated(environ, start_response):
        # Each generated request in its own app context (as under gunicorn), not the test's.
        reset = _cv_app.set(None)
        try:
            return app(environ, start_response)
        finally:
            _cv_app.reset(reset)

    schema = schemathesis.openapi.from_wsgi("/api/points/openapi.json", isolated)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 9
    calls = {"total": 0, "2xx": 0}
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=12,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
            )
            @given(case=operation.as_strategy(generation_mode=mode), real_member=st.booleans())
            def run(case, real_member):
                if real_member and case.path_parameters and "member_id" in case.path_parameters:
                    case.path_parameters["member_id"] = member
                headers = {"Authorization": f"Bearer {tok}"}
                response = case.call(headers=headers)
                calls["total"] += 1
                calls["2xx"] += 200 <= response.status_code < 300
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                run()
            except Unsatisfiable:
                # Nothing to get wrong: an operation with no parameters and no body has no invalid form.
                assert (
                    mode is GenerationMode.NEGATIVE and not operation.body and not operation.path_parameters
                )
    assert calls["total"] >= 9 * 2 * 5
    assert calls["2xx"] > 0  # some generated awards, redemptions and reads went through
    db.session.expire_all()
    assert (
        ledger.ledger_total(person.id)
        == ledger.balance(person.id).available + ledger.balance(person.id).pending
    )
