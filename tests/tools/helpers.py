"""Run the CLI scripts in ``tools/`` in-process."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'tool_{name}', ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def options(overrides: dict) -> list[str]:
    """--cfg-options arguments for a dict of overrides."""
    out = []
    for k, v in overrides.items():
        if isinstance(v, list):
            continue  # lists of dicts are set on the config, not on the command line
        out.append(f'{k}={v}')
    return ['--cfg-options', *out] if out else []
