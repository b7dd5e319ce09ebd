"""Backbones (``BACKBONES``): frozen vision-language models that accept prompts."""
from .openclip import OpenCLIP, register_model_configs

__all__ = ['OpenCLIP', 'register_model_configs']
