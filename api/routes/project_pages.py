"""Pages for research projects, trials and cohorts (being written)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
