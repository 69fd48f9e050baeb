"""The scaffolder engine: expressions, actions and the template runner (I/O, no database).

Entry points for the service layer:

* ``runner.run_template(template, values, workspace, ...)`` – a real run, streaming ``TaskEvent``s.
* ``dryrun.dry_run(template, values, ...)`` – ``POST /v2/dry-run`` semantics.
* ``actions.load_actions(...)`` / ``actions.default_actions(...)`` – the action registry.
* ``lint.lint_template(path)`` – problems with file:line.
"""
