"""Our own implementation of Rockcraft's flask-framework extension.

It validates a Flask project and expands its short ``rockcraft.yaml`` (with
``extensions: [flask-framework]``) into the complete document Rockcraft would build from.
See ``expand`` for the public API and ``python3 -m flask_rock --help`` for the CLI.
"""
