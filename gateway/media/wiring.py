"""Wiring of the media path from the config: the limits the checks and downloads apply, and
``providers.media.read`` with the document limits and the transcriber."""

from __future__ import annotations

from functools import partial

import httpx

from gateway.config import Config
from gateway.media.checks import MediaLimits
from gateway.media.runner import Read
from providers import media


def media_limits(config: Config) -> MediaLimits:
    """What the download and the metadata checks of files allow."""
    return MediaLimits(
        max_image_bytes=config.media.max_image_bytes,
        max_document_bytes=config.media.max_document_bytes,
        stt_available=bool(config.stt.base_url),
        stt_max_seconds=config.stt.max_seconds,
        download_timeout=config.media.download_timeout,
    )


def media_reader(config: Config, http: httpx.AsyncClient) -> Read:
    """``providers.media.read`` with the configured document limits and transcriber."""
    settings = media.ReadSettings(
        max_document_bytes=config.media.max_document_bytes,
        max_pdf_pages=config.media.max_pdf_pages,
        max_document_chars=config.media.max_document_chars,
    )
    stt = config.stt
    transcriber = (
        media.SpeechToText.configured(
            stt.base_url,
            stt.model,
            stt.api_keys,
            config.llm.api_keys,
            http,
            max_seconds=stt.max_seconds,
        )
        if stt.base_url
        else None
    )
    return partial(media.read, settings=settings, transcriber=transcriber)
