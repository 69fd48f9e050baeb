"""Pure text machinery of the search index used by the service: highlights."""
