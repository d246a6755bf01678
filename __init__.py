"""imaging-priors-bench, installed as the package ``ipbench``: a benchmark and paper-replication suite for
Bayesian imaging with deep generative priors.

The folders of the checkout are its subpackages (``ipbench.physics``, ``ipbench.priors``, ``ipbench.methods``,
``ipbench.baselines``, ``ipbench.datasets``, ``ipbench.metrics``, ``ipbench.report``, ``ipbench.suite``), so
nothing of the suite is importable under a generic name such as ``datasets``. ``python -m ipbench`` is the
command line of the stages (``ipbench.suite.__main__``).
"""
__version__ = "0.1.0"
