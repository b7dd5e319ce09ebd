"""Class prompts cut at the text encoder's context length (16 tokens for the tiny CLIP) are reported."""

import pytest

from promptsync.errors import ConfigError
from promptsync.models.prompt_learners import CoOp, MaPLe, TemplatePrompts

from ..conftest import CLASSES

LONG = 'the big striped and spotted fluffy old domestic house pet'  # 10 tokens: 'a photo of a LONG' fills 15
LEARNERS = {'TemplatePrompts': lambda bb, names: TemplatePrompts(bb, 'single', names),
            'CoOp': lambda bb, names: CoOp(bb, classnames=names),
            'MaPLe': lambda bb, names: MaPLe(bb, classnames=names)}


@pytest.fixture(params=sorted(LEARNERS))
def make(request):
    return LEARNERS[request.param]


def test_long_class_names_warn_once_naming_them(backbone, make, warnings_logged):
    names = ['cat', f'cat {LONG}', 'dog', f'dog hound {LONG}', 'golden_retriever']
    make(backbone, names)
    assert len(warnings_logged) == 1
    msg = warnings_logged[0].getMessage()
    need = len(backbone.tokenizer.encode(f'a photo of a dog hound {LONG}.')) + 2
    assert 'truncated' in msg and 'context length 16' in msg and f'needs {need} tokens' in msg
    assert '2 of 5 classes' in msg and f"'cat {LONG}'" in msg and f"'dog hound {LONG}'" in msg
    assert "'cat'" not in msg and "'golden_retriever'" not in msg


def test_warning_lists_the_first_eight_of_many(backbone, warnings_logged):
    names = [f'{k} {LONG}' for k in ['cat', 'dog', 'cow', 'pig', 'hen', 'owl', 'bee', 'ant', 'elk', 'yak']]
    TemplatePrompts(backbone, 'single', names)
    assert len(warnings_logged) == 1
    msg = warnings_logged[0].getMessage()
    assert '10 of 10 classes' in msg and f"'ant {LONG}'" in msg and '(+2 more)' in msg
    assert f"'elk {LONG}'" not in msg


def test_short_names_and_exact_fits_do_not_warn(backbone, make, warnings_logged):
    exact = 'one two three four five six seven eight nine'  # 'a photo of a <9 tokens>.' is 16 tokens
    learner = make(backbone, CLASSES + [exact])
    assert int(learner().text.token_ids[-1, -1]) == backbone.tokenizer.eot_token_id  # a full row, not cut
    TemplatePrompts(backbone, 'imagenet80', CLASSES)
    assert warnings_logged == []


def test_one_long_template_of_an_ensemble_flags_the_class(backbone, warnings_logged):
    """Every class differs under the short template, so the identical long-template rows are no error."""
    TemplatePrompts(backbone, [f'{LONG} and also a very long template {{}}.', 'a photo of a {}.'], CLASSES)
    assert len(warnings_logged) == 1
    assert f'{len(CLASSES)} of {len(CLASSES)} classes' in warnings_logged[0].getMessage()


def test_all_classes_identical_after_truncation_is_an_error(backbone, make, warnings_logged):
    with pytest.raises(ConfigError, match='identical') as err:
        make(backbone, [f'{LONG} cat', f'{LONG} dog'])
    assert 'truncation by the context length 16' in err.value.what
    assert 'shorter class names or templates' in err.value.fix and 'longer context' in err.value.fix
    assert 'truncated' in warnings_logged[0].getMessage()


def test_all_classes_identical_names_is_an_error(backbone, make):
    with pytest.raises(ConfigError, match='identical class names') as err:
        make(backbone, ['tabby_cat', 'Tabby cat'])
    assert 'distinct names' in err.value.fix


def test_prompts_for_another_label_space_is_checked(backbone, make, warnings_logged):
    learner = make(backbone, CLASSES)
    with pytest.raises(ConfigError, match='identical'):
        learner.prompts_for([f'{LONG} cow', f'{LONG} horse'])
    learner.prompts_for(['cow', f'{LONG} horse'])
    learner.prompts_for(['cow', f'{LONG} horse'])
    assert len(warnings_logged) == 2  # the truncation of each label space once, not once per call


def test_some_classes_colliding_warn_naming_the_groups(backbone, make, warnings_logged):
    make(backbone, ['cat', f'{LONG} cat', 'dog', f'{LONG} dog', 'Cat'])
    assert len(warnings_logged) == 2  # the truncation, then the collisions
    collision = warnings_logged[1].getMessage()
    assert '2 groups of classes have identical prompts' in collision
    assert 'identical class names and truncation by the context length 16' in collision
    assert f"['cat', 'Cat']; ['{LONG} cat', '{LONG} dog']" in collision

    warnings_logged.clear()
    make(backbone, ['cat', 'tabby_cat', 'dog', 'tabby cat', 'Dog'])
    assert len(warnings_logged) == 1
    collision = warnings_logged[0].getMessage()
    assert '2 groups' in collision and 'identical class names' in collision and 'truncation' not in collision
    assert "['cat']" not in collision
    assert "['tabby_cat', 'tabby cat']" in collision and "['dog', 'Dog']" in collision
