"""Models: backbones (frozen VLMs), prompt learners (the learnable tensors), and the classifier joining them."""
from .clip_classifier import PromptedCLIP, build_model, build_model_for_shapes

__all__ = ['PromptedCLIP', 'build_model', 'build_model_for_shapes']
