"""Dictionary tests' settings: the schema's `dictionaries` defaults plus a test's overrides.

Built from schemas/config.schema.yaml rather than copied by hand, so that a new or
renamed setting reaches the tests, and overrides are checked against the schema.
"""

from __future__ import annotations

import jsonschema
import pytest

from featdrift.config import load_schema
from helpers import ROOT

# Small and fast: the schema's sizes are for real models.
TINY = {"n_latents": 64, "k": 3, "lr": 3e-3, "tokens": 120000, "batch_size": 256, "buffer_rows": 4096, "aux_k": 32,
        "dead_tokens": 5000, "scale_rows": 2048, "calib_rows": 2048, "eval_tokens": 2000, "ce_sequences": 0}


@pytest.fixture(scope="session")
def dict_section():
    """dict_section(**overrides): the `dictionaries` section with the schema's defaults, TINY, then overrides."""
    schema = load_schema(ROOT / "schemas/config.schema.yaml")["properties"]["dictionaries"]
    defaults = {k: p["default"] for k, p in schema["properties"].items() if "default" in p}

    def section(**overrides) -> dict:
        out = {**defaults, **TINY, **overrides}
        jsonschema.validate(out, schema)
        return out

    return section
