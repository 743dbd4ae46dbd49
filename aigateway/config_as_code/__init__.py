"""Configuration as code: declare providers, routes and tenancy in a YAML file.

``manage.py gateway export`` writes the file, ``manage.py gateway apply FILE [--dry-run]``
brings the database to the declared state. The format is described in docs/config-as-code.md.
"""
