"""Finding cases: the index document, one `SearchIndex` interface and its backends."""
