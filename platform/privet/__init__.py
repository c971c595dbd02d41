"""privet: fine-tune and serve text models on sensitive data, with proof of what happened."""

__version__ = "0.1.0"
