"""The drift tests' shared fixture: the `drift` section with the schema's defaults."""

import pytest
import yaml

from featdrift.config import load_schema, validate
from helpers import ROOT


@pytest.fixture
def cfg():
    """The `drift` section with the schema's defaults."""
    c = yaml.safe_load((ROOT / "config.yaml").read_text())
    c.pop("drift", None)
    return validate(c, load_schema(ROOT / "schemas/config.schema.yaml"))["drift"]
