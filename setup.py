"""promptsync: test-time prompt adaptation of vision-language models."""
from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec((Path(__file__).parent / 'promptsync' / '__init__.py').read_text(), version)

setup(
    name='promptsync',
    version=version['__version__'],
    description='Test-time prompt adaptation for vision-language models: PromptSync, PromptAlign, TPT and friends',
    long_description=(Path(__file__).parent / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['promptsync', 'promptsync.*']),
    package_data={'promptsync': ['datasets/data/*', 'datasets/data/**/*', 'models/backbones/model_configs/*']},
    include_package_data=True,
    install_requires=[
        'torch>=2.1',
        'torchvision>=0.16',
        'open_clip_torch>=3.0,<4',
        'mmengine>=0.10,<0.12',
        'yacs',
        'tabulate',
        'safetensors',
        'tqdm',
        'numpy',
        'pillow',
    ],
    extras_require={'dev': ['pytest>=7']},
    classifiers=['Programming Language :: Python :: 3', 'License :: OSI Approved :: Apache Software License'],
)
