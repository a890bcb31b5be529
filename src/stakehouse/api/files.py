"""Downloads of rebate detail files through the signed, expiring links ``rebate-per-orders``
hands out (``/files/rebates/<name>?Expires=...&Signature=...``). The link is the credential:
no API key is asked for; an expired, truncated or altered link gets 403 and no file."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from stakehouse.wiring import Services


def install(app: FastAPI, services: Services) -> None:
    @app.get("/files/rebates/{name}", include_in_schema=False)
    async def download(name: str, request: Request) -> Response:
        q = request.query_params
        found = await run_in_threadpool(services.rebate_files.download, name[:128], q.get("Expires", "")[:16],
                                        q.get("Signature", "")[:64])
        if found is None:
            return JSONResponse({"error": "Forbidden", "message": "the link is invalid or has expired"},
                                status_code=403)
        return FileResponse(found, media_type="text/csv", filename=name)
