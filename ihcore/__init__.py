"""ihcore: the package of the induction-heads companion book.

Seven folders, each allowed to import only the ones before it (``tests/test_layout.py``
checks this):

* :mod:`ihcore.spine` — what every study uses: the item–label task, the attention-only
  transformer with named hook points, the one training loop, measures, clamps, ablations,
  circuit weight read-offs, fits, claims, devices and plots. Imports nothing else of ihcore.
* :mod:`ihcore.musat`, :mod:`ihcore.wang`, :mod:`ihcore.singh` — one folder per paper
  (Musat et al. 2025; Wang, Yu, E, Wu 2024; Singh et al. 2024). Each imports only the spine.
* :mod:`ihcore.across` — the cross-paper layer: the spine and the three studies.
* :mod:`ihcore.interop` — the book's models in other tools (TransformerLens). Imports only the spine;
  needs the ``interop`` extra.
* :mod:`ihcore.book` — parameters, the chapter registry, sweeps, the build, the command
  line (``python -m ihcore``), bench and page checks. Only the book and the notebooks
  import it.
"""
