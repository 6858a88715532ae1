"""Client of the Higgs Audio v2 RunPod endpoint: one text (``say``), or a whole book fanned
out over the endpoint's workers (``make_book``). No torch, no worker runtime."""

__version__ = "0.2.0"

from .book import BookOptions, BookSummary, make_book
from .book_source import Book, Chapter, read_book
from .endpoint import HttpEndpoint, QueueEndpoint
from .errors import BookFailed, ClientError, EndpointError, InputError
from .fanout import FanOutSettings
from .say import job_input, say

__all__ = [
    "Book",
    "BookFailed",
    "BookOptions",
    "BookSummary",
    "Chapter",
    "ClientError",
    "EndpointError",
    "FanOutSettings",
    "HttpEndpoint",
    "InputError",
    "QueueEndpoint",
    "job_input",
    "make_book",
    "read_book",
    "say",
]
