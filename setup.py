"""promptsync: test-time prompt adaptation of vision-language models."""
import glob
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
version = {}
exec((HERE / 'promptsync' / '__init__.py').read_text(), version)


def package_files(package: str) -> list[str]:
    """Every file under ``package`` that ``packages`` does not already ship (all but the modules of its
    packages), bytecode caches excepted: data folders, assets, json, txt. Computed from the files present,
    so a new data folder cannot be forgotten."""
    root = HERE / package
    files = []
    for path in sorted(root.rglob('*')):
        if not path.is_file() or '__pycache__' in path.parts or path.suffix in ('.pyc', '.pyo'):
            continue
        if path.suffix == '.py' and (path.parent / '__init__.py').is_file():
            continue  # a module of a package
        files.append(glob.escape(path.relative_to(root).as_posix()))
    return files


setup(
    name='promptsync',
    version=version['__version__'],
    description='Test-time prompt adaptation for vision-language models: PromptSync, PromptAlign, TPT and friends',
    long_description=(HERE / 'README.md').read_text(),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['promptsync', 'promptsync.*']),
    package_data={'promptsync': package_files('promptsync')},
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
        'matplotlib>=3.5',  # the figures next to the tables (reliability diagrams, suite bars, ...)
    ],
    extras_require={'dev': ['pytest>=7', 'setuptools>=70.1']},  # 70.1: bdist_wheel built in (tests build a wheel)
    classifiers=['Programming Language :: Python :: 3', 'License :: OSI Approved :: Apache Software License'],
)
