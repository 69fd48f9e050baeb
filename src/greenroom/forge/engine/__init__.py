"""I/O of the forge without the database: git plumbing and the smart-HTTP CGI bridge."""
