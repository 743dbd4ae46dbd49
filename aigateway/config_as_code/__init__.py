"""Configuration as code: declare providers, routes, prices, tenancy and limits in a YAML file.

``manage.py gateway export`` writes the file, ``manage.py gateway apply FILE [--dry-run]``
brings the database to the declared state. The format is described in docs/config-as-code.md.

Modules: specs (the parsed dataclasses), reader and schema (parsing, validation), planning
(shared planner state), providers_routes, tenancy and limits (the planners; limits.py also
exports), applier (plan / apply_config), exporter.
"""
