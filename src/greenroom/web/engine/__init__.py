"""Pure helpers of the web context: graph layout to SVG, text highlighting. No database."""
