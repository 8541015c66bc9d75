"""The model catalogue: the only source of model, table and field names used in SQL.

Nothing a user sends is pasted into SQL; a model name is looked up here or refused.
"""

from services.core.catalogue.fields import Field, FieldError
from services.core.catalogue.registry import MODELS, Model, UnknownModelError, get_model

__all__ = ["MODELS", "Field", "FieldError", "Model", "UnknownModelError", "get_model"]
