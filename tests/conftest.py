"""Shared test setup: never touch the network, and give tests a fixture GLUE folder."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from d2l_utils.fixtures import write_fixtures  # noqa: E402


@pytest.fixture(scope="session")
def glue_dir(tmp_path_factory):
    """A folder in the official GLUE layout holding the fixtures of every task."""
    return write_fixtures(tmp_path_factory.mktemp("glue"))
