"""HTTP entry point of ${{ values.name }}.

Run locally with: uvicorn ${{ values.module }}.app:app --reload
"""

from fastapi import FastAPI

app = FastAPI(title="${{ values.name }}", description=${{ values.description | dump }})


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness probe used by the deploy pipeline."""
    return {"status": "ok", "service": "${{ values.name }}"}


@app.get("/")
def index() -> dict[str, str]:
    """Replace with the service's first real endpoint."""
    return {"message": "Hello from ${{ values.name }}"}
