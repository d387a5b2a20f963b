"""attngen-keras: interpretable DNA classification with AttnGen in Keras 3."""

__version__ = "0.1.0"
