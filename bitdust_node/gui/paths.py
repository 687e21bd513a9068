"""Which paths of the REST port are the web interface's: known without loading the interface's code."""


def serves_gui(path: bytes) -> bool:
    """Whether a path belongs to the web interface rather than the REST API."""
    return path == b"/" or path == b"/gui" or path.startswith(b"/gui/")
