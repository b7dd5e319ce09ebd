"""configs/_base_/analysis.py composes with a method's bases (in place of default_runtime.py) and passes the
config check; the recorder's own arguments are checked."""
import pytest

from promptsync.engine.runner import prepare_config
from promptsync.errors import ConfigError
from promptsync.hooks.adaptation_recorder import AdaptationRecorder
from promptsync.utils.config import load_config

from ..tools.helpers import ROOT

BASES = ['configs/_base_/models/ps_shapes_coop.py', 'configs/_base_/datasets/shapes.py', 'configs/_base_/tta/tpt.py']


def test_snippet_in_place_of_default_runtime(tmp_path):
    bases = [str(ROOT / 'configs/_base_/analysis.py')] + [str(ROOT / b) for b in BASES]
    (tmp_path / 'recorded.py').write_text(f'_base_ = {bases!r}\n')
    cfg = load_config(tmp_path / 'recorded.py')
    assert [h['type'] for h in cfg.custom_hooks] == ['AdaptationRecorder'] and cfg.seed == 0
    prepare_config(cfg, 'test')  # unknown keys or arguments would be errors here


@pytest.mark.parametrize('bad', [dict(min_shift=-1.0), dict(min_shift='small'), dict(sums_every=0),
                                 dict(sums_every=True)])
def test_bad_arguments_are_config_errors(bad):
    with pytest.raises(ConfigError):
        AdaptationRecorder(**bad)
