import logging
import os

os.environ.setdefault('HF_HUB_OFFLINE', '1')  # never try the network from tests

import pytest  # noqa: E402
import torch  # noqa: E402

from promptsync.datasets.fake import make_image_folder  # noqa: E402
from promptsync.models.backbones import OpenCLIP  # noqa: E402

TINY = 'ps-tiny-vit'
CLASSES = ['cat', 'dog', 'golden_retriever', 'tabby_cat']


def tiny_backbone(seed: int = 0) -> OpenCLIP:
    torch.manual_seed(seed)
    return OpenCLIP(TINY, pretrained=None, precision='fp32')


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op thread for a module (``pytestmark = pytest.mark.usefixtures('one_thread')``): the tiny model gains
    nothing from intra-op threads, and they thrash on shared, busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope='session')
def backbone() -> OpenCLIP:
    """A shared tiny random-weight backbone (frozen; tests must not modify it)."""
    return tiny_backbone()


@pytest.fixture(scope='session')
def fake_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('folder'), CLASSES, per_class=3)


@pytest.fixture
def tiny_overrides(fake_folder):
    """--cfg-options that turn a real ViT-B/16 config into a tiny offline run on a generated folder."""
    return {'model.backbone.model_name': TINY, 'model.backbone.pretrained': None,
            'model.backbone.precision': 'fp32', 'data.dataset.type': 'ImageFolder',
            'data.dataset.root': str(fake_folder), 'data.num_workers': 0, 'device': 'cpu',
            'default_hooks.progress.disable': True}


def interrupt(monkeypatch, owner, name, when):
    """Patch ``owner.name`` to raise KeyboardInterrupt on the call where ``when(call_number, *args)`` is true
    (call numbers start at 1); returns a function that puts the original back."""
    original = getattr(owner, name)
    calls = {'n': 0}

    def patched(self, *args):
        calls['n'] += 1
        if when(calls['n'], *args):
            raise KeyboardInterrupt
        return original(self, *args)
    monkeypatch.setattr(owner, name, patched)
    return lambda: monkeypatch.setattr(owner, name, original)


@pytest.fixture
def warnings_logged():
    """Warnings reaching the standard-library ``promptsync`` logger (where the package's records are handed; it does
    not propagate to the root logger, where ``caplog`` listens)."""
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger('promptsync')
    level = logger.level
    logger.setLevel(min(level or logging.WARNING, logging.WARNING))
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)
