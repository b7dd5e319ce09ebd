import argparse
import math

import pytest
from mmengine.config import Config, DictAction

from promptsync.errors import ConfigError
from promptsync.utils.cfg_options import (CFG_OPTIONS_HELP, CfgOptionsAction, check_types, parse_item,
                                          parse_value)


@pytest.mark.parametrize('text, expected', [
    # numbers: only when the whole value is one number
    ('1e-3', 0.001), ('-5', -5), ('-1e-3', -0.001), ('0.5', 0.5), ('+2', 2), ('010', 10), ('1_000', 1000),
    # True/False/None and their lowercase forms
    ('None', None), ('none', None), ('True', True), ('true', True), ('False', False), ('false', False),
    ('TRUE', True), ('NONE', 'NONE'),
    # strings: quoted, or anything Python cannot read, kept exactly as written
    ("'abc'", 'abc'), ('"a b"', 'a b'), ("'1'", '1'), ("'a,b'", 'a,b'), ("'a\\'b'", "a'b"),
    ('openai', 'openai'), ('ViT-B-16', 'ViT-B-16'), ('ViT-B/16', 'ViT-B/16'), ('/data/my images', '/data/my images'),
    (' two  spaces ', ' two  spaces '), (' [1,2 ', ' [1,2 '), ('1e-3 0', '1e-3 0'), ('5 epochs', '5 epochs'),
    ('a#b', 'a#b'),
    ("don't", "don't"), ('{[1]: 2}', '{[1]: 2}'), ('[1,2', '[1,2'), ('[1][2]', '[1][2]'),
    ('{1, 2}', '{1, 2}'), ('0.5.1', '0.5.1'),
    # never evaluated
    ("__import__('os').getcwd()", "__import__('os').getcwd()"), ('dict(**x)', 'dict(**x)'), ('dict(1)', 'dict(1)'),
    ('1+1', '1+1'), ('list(a=1)', 'list(a=1)'), ('1j', '1j'), ("b'x'", "b'x'"), ('...', '...'), ('a,[b', 'a,[b'),
    # a comma outside brackets and quotes makes a list
    ('a,b', ['a', 'b']), ('1,2', [1, 2]), ('a, b', ['a', 'b']), ('a,', ['a']), ('my dir,x', ['my dir', 'x']),
    ("'a,b',c", ['a,b', 'c']), ('[1,2],3', [[1, 2], 3]),
    # lists and tuples, each element read by the same rules
    ('[]', []), ('()', ()), ('[1,]', [1]), ('(1,)', (1,)), ('(1)', (1,)), ('(0.3,1.0)', (0.3, 1.0)),
    ('[a, b]', ['a', 'b']), ('[ViT-B-16, RN50]', ['ViT-B-16', 'RN50']), ('[/data/a b, -1]', ['/data/a b', -1]),
    ('[(1, 2, 3), [a, b], c]', [(1, 2, 3), ['a', 'b'], 'c']), ("['a]', b]", ['a]', 'b']), ('[(1)]', [(1,)]),
    # dicts
    ("[dict(type='ProgressHook', disable=True)]", [{'type': 'ProgressHook', 'disable': True}]),
    ("[dict(type='A', b=dict(c=1))]", [{'type': 'A', 'b': {'c': 1}}]),
    ('dict(type=ProgressHook, disable=true)', {'type': 'ProgressHook', 'disable': True}),
    ("dict(a=dict(b=dict(c=[1, -2.5, None])))", {'a': {'b': {'c': [1, -2.5, None]}}}),
    ("{'a': 1, b: (2, 3), 4: none}", {'a': 1, 'b': (2, 3), 4: None}), ('dict()', {}), ('{}', {}),
])
def test_parse_value(text, expected):
    value = parse_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_parse_value_inf_nan():
    assert parse_value('inf') == math.inf and parse_value('-inf') == -math.inf
    assert math.isnan(parse_value('nan'))
    assert parse_value('[inf, -1]') == [math.inf, -1]
    assert parse_value('dict(a=inf, b=-inf)') == {'a': math.inf, 'b': -math.inf}


@pytest.mark.parametrize('text', [
    '1', '-5', '1e-3', '0.5', '010', 'True', 'false', 'None', 'abc', 'ViT-B-16', '/data/x', 'inf',
    '[1,2]', '[1, 2]', '(1,2)', '[a,b]', 'a,b', '1,2,3', '[(1,2,3),[a,b],c]', '(1)', '[]', '()', '[1,2,]',
    '[[1,2],[3]]', 'a,,b',
])
def test_same_meaning_as_mmengine_dict_action(text):
    assert parse_value(text) == DictAction._parse_iterable(text)


def test_differs_from_mmengine_only_by_keeping_spaces():
    assert DictAction._parse_iterable('1e-3 0') == 1e-30
    assert parse_value('1e-3 0') == '1e-3 0'
    assert DictAction._parse_iterable('/data/my images') == '/data/myimages'
    assert parse_value('/data/my images') == '/data/my images'


@pytest.mark.parametrize('item, expected', [
    ('tta.optimizer.lr=1e-3', ('tta.optimizer.lr', 0.001)),
    ('data.root=/data/my images', ('data.root', '/data/my images')),
    ('model.name=a=b', ('model.name', 'a=b')),  # split on the first '='
    ('tta.losses.1.weight=-2', ('tta.losses.1.weight', -2)),
    ('x=None', ('x', None)), ("x=''", ('x', '')),
])
def test_parse_item(item, expected):
    assert parse_item(item) == expected


@pytest.mark.parametrize('item, message', [
    ('tta.steps', "has no '='"),
    ('=1', 'empty key'),
    ('tta .steps=1', 'contains a space'),
    (' tta.steps=1', 'contains a space'),
    ('a..b=1', 'empty part'),
    ('a.b.=1', 'empty part'),
    ('.a=1', 'empty part'),
    ('a=', 'empty value'),
    ('a=  ', 'empty value'),
])
def test_parse_item_malformed(item, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_item(item)
    assert info.value.where == f'--cfg-options {item}'
    assert info.value.fix


def test_empty_value_says_how_to_write_none_or_empty_string():
    with pytest.raises(ConfigError) as info:
        parse_item('data.root=')
    assert 'data.root=None' in info.value.fix and "\"data.root=''\"" in info.value.fix


@pytest.fixture
def tree():
    return Config(dict(
        tta=dict(steps=1, optimizer=dict(lr=0.005), episodic=True,
                 losses=[dict(type='Entropy', weight=1.0), dict(type='Align', weight=0.5, enabled=False)]),
        model=dict(name='ViT-B-16', pretrained=None))).to_dict()


@pytest.mark.parametrize('options', [
    {'tta.optimizer.lr': 0.001}, {'tta.optimizer.lr': 1}, {'tta.steps': None}, {'tta.steps': [1, 2]},
    {'tta.episodic': False}, {'tta.episodic': None}, {'tta.losses.1.enabled': True},
    {'tta.losses.0.weight': 2}, {'model.name': 5}, {'model.pretrained': '/w.bin'},
    # keys that do not exist are left to the schema check
    {'tta.nope': 'x'}, {'tta.losses.5.weight': 'x'}, {'tta.losses.x.weight': 'x'}, {'tta.steps.x': 'x'},
])
def test_check_types_accepts(tree, options):
    check_types(tree, options)


def test_check_types_refuses_string_for_number(tree):
    key, value = parse_item('tta.optimizer.lr=1e-3 0')
    with pytest.raises(ConfigError) as info:
        check_types(tree, {'tta.steps': 2, key: value})
    message = str(info.value)
    assert 'tta.optimizer.lr expects a number' in message
    assert '0.005' in message and "'1e-3 0'" in message and 'quotes' in info.value.fix


@pytest.mark.parametrize('options, expects', [
    ({'tta.steps': 'two'}, 'a number'),
    ({'tta.losses.1.weight': 'x'}, 'a number'),
    ({'tta.episodic': 'yes'}, 'True or False'),
    ({'tta.episodic': 1}, 'True or False'),
    ({'tta.losses.1.enabled': [True]}, 'True or False'),
])
def test_check_types_refuses(tree, options, expects):
    (key, _), = options.items()
    with pytest.raises(ConfigError, match=f'{key} expects {expects}'):
        check_types(tree, options)


def test_check_types_on_plain_dicts_with_list_index():
    check_types({'a': [{'b': 1}]}, {'a.0.b': 2})
    with pytest.raises(ConfigError, match='a.0.b expects a number'):
        check_types({'a': [{'b': 1}]}, {'a.0.b': 'x'})


def make_parser():
    parser = argparse.ArgumentParser(prog='tool')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={}, help=CFG_OPTIONS_HELP)
    return parser


def test_action_end_to_end():
    args = make_parser().parse_args([
        '--cfg-options', 'tta.optimizer.lr=1e-3', 'data.root=/data/my images', 'tta.steps=1',
        "custom_hooks=[dict(type='ProgressHook', disable=True)]", 'tta.steps=4',
        '--cfg-options', 'model.name=ViT-B-16'])
    assert args.cfg_options == {'tta.optimizer.lr': 0.001, 'data.root': '/data/my images', 'tta.steps': 4,
                                'custom_hooks': [{'type': 'ProgressHook', 'disable': True}],
                                'model.name': 'ViT-B-16'}
    assert list(args.cfg_options) == ['tta.optimizer.lr', 'data.root', 'tta.steps', 'custom_hooks', 'model.name']


def test_action_default_untouched():
    parser = make_parser()
    assert parser.parse_args([]).cfg_options == {}
    parser.parse_args(['--cfg-options', 'a=1'])
    assert parser.parse_args([]).cfg_options == {}


def test_action_without_nargs():
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', action=CfgOptionsAction)
    assert parser.parse_args(['--cfg-options', 'a=1', 'b=x']).cfg_options == {'a': 1, 'b': 'x'}
    assert 'KEY=VALUE' in parser.format_help()


def test_action_one_item_per_flag():
    parser = argparse.ArgumentParser()
    parser.add_argument('--set', nargs=None, action=CfgOptionsAction)
    assert parser.parse_args(['--set', 'a=1', '--set', 'b=x y']).set == {'a': 1, 'b': 'x y'}


@pytest.mark.parametrize('item, message', [('tta.steps', "has no '='"), ('a..b=1', 'empty part'),
                                           ('a=', 'empty value')])
def test_action_bad_item_exits_2_with_short_message(capsys, item, message):
    with pytest.raises(SystemExit) as info:
        make_parser().parse_args(['--cfg-options', 'ok=1', item])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'tool: error: argument --cfg-options: ' in err and message in err
    assert f'where: --cfg-options {item}' in err and 'Traceback' not in err


def test_help_text():
    assert CFG_OPTIONS_HELP.strip()
    for example in ('1e-3 0', '/data/my images', 'a,b', 'None', "key=''", 'last value wins'):
        assert example in CFG_OPTIONS_HELP
    assert 'KEY=VALUE' in make_parser().format_help()  # no '%' that argparse would try to format


def test_action_adds_to_a_copy_of_the_default():
    default = {'z': 0}
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default=default)
    assert parser.parse_args(['--cfg-options', 'a=1']).cfg_options == {'z': 0, 'a': 1}
    assert default == {'z': 0}
