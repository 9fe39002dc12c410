"""Index template and mapping files of the search sinks (package data)."""
