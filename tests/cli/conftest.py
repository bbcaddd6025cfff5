import pytest


@pytest.fixture(scope="session")
def smollm2_dir():
    """SmolLM2-135M converted to a Hugging Face folder (cached in the user's cache after the first run)."""
    from infra.artifacts.model import prepare_smollm2

    return prepare_smollm2()
