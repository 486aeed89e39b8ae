"""recae: autoencoder recommenders (Mult-VAE, Mult-DAE) with honest offline evaluation."""

__version__ = "0.1.0"
