"""Domain errors. Adapters map each to one DICOM status and one HTTP problem type."""


class ArchiveError(Exception):
    """Base of every rule the domain refuses, with a message naming the object and the reason."""


class NotFound(ArchiveError):
    pass


class NotPermitted(ArchiveError):
    pass


class NotAuthenticated(ArchiveError):
    pass


class InvalidInput(ArchiveError):
    pass


class Conflict(ArchiveError):
    pass
