"""lbhessian: large-batch training, Hessian spectra and adversarial robustness (Yao et al. 2018)."""

__version__ = "0.1.0"
