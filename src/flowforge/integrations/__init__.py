"""flowforge where its users already work: each module adapts flows to another library.

- ``flowforge.integrations.sklearn``: ``FlowDensity``, a scikit-learn density estimator
  (needs the ``workbench`` extra, which has scikit-learn);
- ``flowforge.integrations.sbi``: a density-estimator builder for sbi's neural posterior
  estimation (needs the ``sbi`` extra).

Nothing is imported here: ``import flowforge.integrations`` loads neither library.
"""
