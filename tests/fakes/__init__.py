"""HTTP-level fakes of third-party hosts (GitHub, GitLab). Each says in its docstring what it omits."""
