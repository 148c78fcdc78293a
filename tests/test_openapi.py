"""The published schema is what front-end developers build against."""

from app.main import create_app


def test_every_search_parameter_is_described_with_an_example() -> None:
    schema = create_app().openapi()
    operation = schema["paths"]["/v1/search/therapists"]["get"]
    for parameter in operation["parameters"]:
        described = parameter.get("description") or parameter["schema"].get("description")
        example = (
            parameter.get("example")
            or parameter.get("examples")
            or parameter["schema"].get("examples")
        )
        assert described, f"{parameter['name']} has no description"
        assert example is not None, f"{parameter['name']} has no example"
    assert "zip=60614&radius=10&specialty=neurology&plan_id=1" in operation["description"]


def test_write_routes_declare_the_api_key_scheme_and_their_errors() -> None:
    schema = create_app().openapi()
    assert "ApiKey" in schema["components"]["securitySchemes"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            if method in ("post", "patch", "delete"):
                assert operation.get("security"), f"{method.upper()} {path} lacks security"
                assert {"401", "403", "422"} <= set(operation["responses"]), f"{method} {path}"


def test_error_responses_are_documented_as_they_are_sent() -> None:
    # FastAPI documented them as application/json, and validation errors with its own
    # HTTPValidationError body; every 4xx and 5xx is an application/problem+json Problem.
    schema = create_app().openapi()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            for status, response in operation["responses"].items():
                if status[0] in "45":
                    assert response["content"] == {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    }, f"{method} {path} {status}"
            if "requestBody" in operation:
                assert "413" in operation["responses"], f"{method} {path}: the body limit"


def test_json_roster_upload_is_documented_as_a_json_document() -> None:
    # `type: string` said the JSON body was one JSON string; a QHP file is an array and
    # a FHIR Bundle an object.
    schema = create_app().openapi()
    for path in ("/v1/imports", "/v1/payers/{payer_id}/imports"):
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        assert content["application/json"]["schema"] == {"type": ["array", "object"]}


def test_an_upload_documents_the_location_of_its_job_and_what_refuses_its_body() -> None:
    schema = create_app().openapi()
    for path in ("/v1/imports", "/v1/payers/{payer_id}/imports"):
        responses = schema["paths"][path]["post"]["responses"]
        assert "Location" in responses["202"]["headers"], path
        assert {"413", "415", "422"} <= set(responses), path
