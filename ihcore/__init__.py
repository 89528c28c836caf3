"""ihcore: tasks, models, training and measures of the induction-heads companion book.

One spine shared by every chapter: tasks (:mod:`ihcore.tasks`) → models with named hook
points (:mod:`ihcore.models`, :mod:`ihcore.hooks`) → the training loop (:mod:`ihcore.train`)
→ measures (:mod:`ihcore.measures`) → plots (:mod:`ihcore.plots`), with the claims ledger
(:mod:`ihcore.claims`) and the chapter registry (:mod:`ihcore.chapters`).
"""
