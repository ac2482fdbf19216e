"""Try enhancement on an uploaded image (PNG/JPEG in, JPEG out) with the agent's loaded models."""

from __future__ import annotations

import logging
from typing import Annotated

import numpy as np
from fastapi import APIRouter, File, HTTPException, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from edge_agent.api.deps import AgentDep, AuthDep
from edge_agent.api.images import ImageError, decode_upload
from edge_agent.media import encode_jpeg

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["enhance"])


@router.post(
    "/enhance",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "the enhanced image"},
        400: {"description": "not a usable PNG/JPEG; the message says why"},
        401: {"description": "not logged in"},
        403: {"description": "read-only: no API password set"},
        413: {"description": "body over api.max_body_mb"},
        503: {"description": "the enhancement models failed"},
    },
)
async def try_enhancement(
    _: AuthDep, agent: AgentDep, image: Annotated[UploadFile, File(description="PNG or JPEG")]
) -> Response:
    data = await image.read()
    try:
        bgr = decode_upload(data)
    except ImageError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    try:
        out = await run_in_threadpool(agent.enhance_image, bgr)
        if not isinstance(out, np.ndarray) or out.dtype != np.uint8 or out.ndim != 3:
            raise ValueError(f"enhance_image returned {type(out).__name__}")
        jpeg = await run_in_threadpool(encode_jpeg, out, 90)
    except Exception:
        log.exception("try-enhancement failed")
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "enhancement failed; see the agent log"
        ) from None
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
