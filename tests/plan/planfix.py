"""Shared pieces of the planner tests: fixture paths, the published configurations, the tiny model.

Not a conftest.py: tests/conftest.py owns that module name (its helpers are imported by name)."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
MACHINES = ROOT / "qvdoctor" / "data" / "machines"


def fixture_model(name: str) -> Path:
    return FIXTURES / name


@pytest.fixture
def published():
    """Load a published configuration from tests/plan/fixtures as a ModelInfo."""
    from qvdoctor.model.info import load_model_info

    return lambda name: load_model_info(FIXTURES / name)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The tiny random Qwen2.5-VL (built once, cached; needs torch + transformers)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from qvdoctor.tinymodel import build_tiny_model

    return build_tiny_model()
