"""Settings: the only module that reads the environment (``LASTMILE_*`` variables and ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process-wide configuration shared by every surface (CLI, server, Slack, scheduler)."""

    model_config = SettingsConfigDict(
        env_prefix="LASTMILE_",
        env_file=".env",
        env_ignore_empty=True,
        extra="ignore",
    )

    db: Path = Field(
        default=Path("data/lastmile.duckdb"),
        description="DuckDB database file: the embedded default store.",
    )
    duckdb_memory_limit: str = Field(
        default="2GB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="Memory cap for DuckDB during loads; it spills to disk beyond it.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@lru_cache
def get_settings() -> Settings:
    """Return the process's settings (cached; tests clear the cache to override)."""
    return Settings()
