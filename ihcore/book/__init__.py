"""The book: parameters, the chapter registry, sweeps, execution and build, command line, bench and page checks.

Imports everything else; only the book itself and the notebooks import it.
"""
