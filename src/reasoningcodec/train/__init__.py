"""Training code for the codec (needs the corpus built by ``python -m reasoningcodec.data build``)."""

from .config import TrainConfig
from .export import export_resumable
from .trainer import train

__all__ = ["TrainConfig", "export_resumable", "train"]
