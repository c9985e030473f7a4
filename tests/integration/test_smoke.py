from tests.support.api import User


def test_create_and_read(api):
    admin = User("acme")
    created = api.call(
        "POST", "/contacts", admin, {"email": "Ada@Example.com", "first_name": "Ada"}
    )
    assert created.status == 201, created.text
    body = created.json
    got = api.call("GET", f"/contacts/{body['id']}", admin)
    assert got.status == 200, got.text
    assert got.json["email"] == "ada@example.com"
    assert got.headers["etag"] == '"1"'
