"""Load the operator-enabled tables into the catalogue when a service starts."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from services.core.catalogue.reflect import reflect_models
from services.core.catalogue.registry import register_models
from services.core.catalogue.rules import load_rules
from services.core.settings import Settings

__all__ = ["load_operator_models"]


async def load_operator_models(engine: AsyncEngine, settings: Settings) -> list[str]:
    """Reflect ``DM_MODEL_TABLES`` with ``DM_FIELD_RULES``; returns the model names added.

    Raises ``ReflectError`` or ``RulesError`` with a message naming the table or file, so a
    misconfigured service stops at start-up instead of failing jobs later.
    """
    if not settings.model_tables:
        return []
    rules = load_rules(settings.field_rules)
    async with engine.connect() as conn:
        models = await reflect_models(conn, settings.model_tables, rules)
    register_models(models)
    return sorted(models)
