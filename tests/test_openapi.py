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
