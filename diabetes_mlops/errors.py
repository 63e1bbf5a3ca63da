"""The kit's exceptions: each carries a message fit to show a user as it is."""


class MlopsError(Exception):
    """Base of every error the CLI reports as one line and exit code 1."""


class ConfigError(MlopsError):
    """A setting is missing or has a bad value; ``key`` names the setting when one is to blame."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class DataError(MlopsError):
    """A data file cannot be read as a table of the expected shape."""


class RegistryError(MlopsError):
    """A model version or alias cannot be found or written."""


class IntegrityError(RegistryError):
    """A registered artifact does not match the checksum recorded when it was registered."""


class DeployError(MlopsError):
    """A deployment could not be made, did not become ready, or failed its smoke test."""
