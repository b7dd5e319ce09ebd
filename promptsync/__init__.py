"""promptsync: test-time prompt adaptation of vision-language models (PromptSync, PromptAlign, TPT, ...)."""
__version__ = '0.1.0'
