import reprlib


class ModelFileError(ValueError):
    """A model file that can't be used: unreadable, refused for safety, or not the architecture it claims."""


class WeightsUnavailableError(RuntimeError):
    """A registered model whose weights are not on this machine and can't be downloaded right now."""


class _ShortRepr(reprlib.Repr):
    def repr_bytes(self, value, level):  # reprlib would repr a bytes object whole, then cut it
        return repr(value[: self.maxstring]) + ("..." if len(value) > self.maxstring else "")


def shown(value):
    """A short repr of ``value``, data from a model file, for an error message: never the whole of a large value."""
    return _ShortRepr().repr(value)
