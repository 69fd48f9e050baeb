from fastapi.testclient import TestClient

from ${{ values.module }}.app import app

client = TestClient(app)


def test_healthz_reports_ok() -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "${{ values.name }}"}


def test_index_greets() -> None:
    assert client.get("/").json()["message"].startswith("Hello")
