"""The book's models in other tools: TransformerLens (``ihcore.interop.hooked_transformer``).

Needs the package's ``interop`` extra (``pip install -e .[interop]``; ``make test`` and
``make book`` install it). Nothing else of ``ihcore`` imports this folder.
"""
