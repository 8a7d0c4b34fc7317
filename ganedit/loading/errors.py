class ModelFileError(ValueError):
    """A model file that can't be used: unreadable, refused for safety, or not the architecture it claims."""


class WeightsUnavailableError(RuntimeError):
    """A registered model whose weights are not on this machine and can't be downloaded right now."""
