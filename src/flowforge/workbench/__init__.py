"""The workbench: the ``flowforge`` command, run folders, data sets with their true
densities, scoring, figures, reports, baselines and comparisons.

It needs the ``workbench`` extra (scikit-learn, matplotlib, tqdm, safetensors), which
only this package imports; ``import flowforge`` does not load it.
"""
