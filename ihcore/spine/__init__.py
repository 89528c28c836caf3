"""The spine: tasks → models with named hook points → one training loop → measures → claims → plots.

Everything a study needs and nothing specific to one paper; imports nothing else of ihcore.
"""
