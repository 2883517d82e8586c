"""Real CIFAR-10 fixtures shared with the other shipping tests (tests/export/fixtures.py)."""

from tests.export.fixtures import cifar, test_1000  # noqa: F401
