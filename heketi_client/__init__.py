"""A small, typed, standalone client for the Heketi REST API.

It imports nothing from Kubernetes or from the provisioner, so it can be used on its
own (an import-linter contract in ``pyproject.toml`` keeps it that way).
"""
