"""Response contracts: a JSON Schema the partner's documents must satisfy."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jsonschema

from airflow_provider_integrations.http.errors import ResponseContractError

if TYPE_CHECKING:
    from airflow_provider_integrations.http.client import Response


@lru_cache(maxsize=128)
def _validator(schema_json: str) -> jsonschema.protocols.Validator:
    import json

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_document(doc: Any, schema: Mapping[str, Any], response: Response) -> None:
    """Raise :class:`ResponseContractError` naming the JSON path of the first violation."""
    import json

    validator = _validator(json.dumps(schema, sort_keys=True))
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is not None:
        raise ResponseContractError(
            f"response breaks the contract at {error.json_path}: {error.message}",
            method=response.method,
            url=response.url,
            status=response.status,
        )
