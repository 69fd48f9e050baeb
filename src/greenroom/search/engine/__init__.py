"""Pure text machinery of the search index: term sanitizing, typo candidates and highlights."""
