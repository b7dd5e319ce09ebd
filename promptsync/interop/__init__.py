"""Interoperability with the original repositories (Dassl / CoOp / MaPLe / PromptAlign): their YAML configs
(:mod:`.dassl_config`, docs/interop.md)."""
from .dassl_config import Conversion, Entry, convert_dassl_config, is_dassl_config, read_dassl_config
from .dassl_write import config_text, load_conversion, write_config

__all__ = ['Conversion', 'Entry', 'convert_dassl_config', 'is_dassl_config', 'read_dassl_config', 'config_text',
           'load_conversion', 'write_config']
