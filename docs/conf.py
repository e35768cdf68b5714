"""Sphinx configuration for the flocker-zfs documentation."""

project = "flocker-zfs"
author = "flocker-zfs contributors"
copyright = "the flocker-zfs contributors; Apache License 2.0"
release = "0.1.0.dev0"

extensions = []
exclude_patterns = ["_build"]
html_theme = "alabaster"
# Warnings are errors (sphinx-build -W): a broken reference fails the build.
nitpicky = True
