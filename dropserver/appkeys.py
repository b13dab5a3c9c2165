"""Typed application keys."""

from __future__ import annotations

from aiohttp import web

from dropserver.services import Services

SERVICES = web.AppKey("services", Services)
