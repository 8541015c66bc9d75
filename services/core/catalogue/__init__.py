"""The model catalogue: the only source of model, table and field names used in SQL.

Nothing a user sends is pasted into SQL; a model name is looked up here or refused.
"""

from services.core.catalogue.fields import Field, FieldError
from services.core.catalogue.registry import (
    MODELS,
    ForeignKey,
    Model,
    UnknownModelError,
    get_model,
    register_models,
)

__all__ = [
    "MODELS",
    "Field",
    "FieldError",
    "ForeignKey",
    "Model",
    "UnknownModelError",
    "get_model",
    "register_models",
]
