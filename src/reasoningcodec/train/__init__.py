"""Training code for the codec (needs the corpus built by ``python -m reasoningcodec.data build``)."""

from .trainer import TrainConfig, export_resumable, train

__all__ = ["TrainConfig", "export_resumable", "train"]
