"""Shared command-line plumbing of the tools: the common arguments, how they become a config, and how an error
is shown (a few lines, no traceback unless ``--debug``)."""
from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

from mmengine.config import Config

from promptsync.errors import ConfigError, PromptsyncError

from .cfg_options import CFG_OPTIONS_HELP, CfgOptionsAction
from .config import load_config

ENVIRONMENT = """environment variables:
  PROMPTSYNC_DATA   data root of the dataset configs ({{$PROMPTSYNC_DATA:data}}; default ./data)
  PROMPTSYNC_CKPT   root of checkpoints and prototype banks in the configs (default ./checkpoints)
  PROMPTSYNC_CACHE  where file hashes are cached (default ~/.cache/promptsync)
  HF_HUB_OFFLINE=1  never download backbone weights (open_clip / Hugging Face hub); a missing tag is an error
  CUDA_VISIBLE_DEVICES, and torchrun's RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT
"""


def epilog(extra: str = '') -> str:
    return (f'{extra}\n\n' if extra else '') + ENVIRONMENT + '\n--cfg-options values:\n' + '\n'.join(
        '  ' + line for line in CFG_OPTIONS_HELP.strip().splitlines())


def number_arg(kind: type = int, minimum: float = 1, above: bool = False):
    """An argparse ``type``: a ``kind`` (int or float) ``>= minimum`` (``> minimum`` when ``above``)."""
    what = 'an integer' if kind is int else 'a number'
    bound = f"{'>' if above else '>='} {minimum}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f'expected {what} {bound}, got {text!r}') from None
        if value < minimum or (above and value == minimum) or value != value:
            raise argparse.ArgumentTypeError(f'must be {bound}, got {text}')
        return value
    parse.__name__ = f'{kind.__name__} {bound}'  # what argparse names in its error
    return parse


positive_int = number_arg(int, 1)


def base_parser(description: str, extra_epilog: str = '') -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description, epilog=epilog(extra_epilog),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--debug', action='store_true', help='show the full traceback of an error')
    return p


def add_cfg_options(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, default={}, metavar='KEY=VALUE',
                   help=f'override config keys, e.g. {example} (applied last; value rules below)')


def config_parser(description: str, config_help: str, options_example: str,
                  extra_epilog: str = '') -> argparse.ArgumentParser:
    """A parser with CONFIG, --work-dir, --cfg-options, --seed, --device, --launcher and --debug."""
    p = base_parser(description, extra_epilog)
    p.add_argument('config', help=config_help)
    p.add_argument('--work-dir', help='output folder (default: work_dirs/<config folder>/<config name>)')
    add_cfg_options(p, options_example)
    p.add_argument('--seed', type=int, help='run seed (everything random derives from it)')
    p.add_argument('--device', help="'auto', 'cpu', 'cuda', 'cuda:1'")
    p.add_argument('--launcher', choices=('none', 'pytorch', 'slurm', 'mpi'), default='none',
                   help="how the processes were started: 'pytorch' under torchrun (multi-GPU / multi-node)")
    return p


def add_dassl_arguments(p: argparse.ArgumentParser) -> None:
    """A Dassl/CoOp/MaPLe/PromptAlign YAML CONFIG: the dataset YAML, the trainer name and the trailing options.

    Their scripts' spellings work too (``--config-file X.yaml`` for CONFIG, ``--output-dir`` for --work-dir), so a
    line of their scripts runs after the script name; parse with :func:`parse_config_args`.
    """
    for action in p._actions:  # CONFIG may come as --config-file instead (checked by parse_config_args)
        if action.dest == 'config':
            action.nargs, action.default = '?', None
    g = p.add_argument_group('a Dassl-style .yaml CONFIG (the trainer YAML of CoOp / MaPLe / PromptAlign; '
                             'docs/interop.md)')
    g.add_argument('--config-file', metavar='TRAINER.yaml', help='CONFIG, spelt as their scripts pass it')
    g.add_argument('--output-dir', dest='work_dir', help='--work-dir, spelt as their scripts pass it')
    g.add_argument('--dataset-config-file', metavar='DATASET.yaml', help="the dataset YAML, as their scripts pass it")
    g.add_argument('--trainer', help='TRAINER.NAME when the YAML does not set it (CoOp, CoCoOp, MaPLe, IVLP, VPT, '
                   'PromptAlign), as their scripts pass it')
    g.add_argument('--root', help='DATASET.ROOT (their --root)')
    g.add_argument('opts', nargs='*', default=[], metavar='KEY VALUE',
                   help='Dassl options after the arguments, e.g. DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base')


def parse_config_args(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parse options and positionals in any order (Dassl's trailing KEY VALUE options come after the arguments);
    CONFIG is the positional or ``--config-file`` (then every positional is a trailing option), not both."""
    args = p.parse_intermixed_args(argv)
    config_file = getattr(args, 'config_file', None)
    if config_file is not None:
        if args.config is not None:  # with --config-file the first positional is the first KEY of the options
            args.opts = [args.config] + list(args.opts)
        args.config = config_file
    if args.config is None:
        p.error('give the CONFIG file (a python config, or a Dassl-style .yaml as CONFIG or --config-file)')
    return args


def _dassl_conversion(args: argparse.Namespace, job: str):
    from promptsync.interop import convert_dassl_config
    return convert_dassl_config(args.config, getattr(args, 'dataset_config_file', None), job,
                                opts=getattr(args, 'opts', []), trainer=getattr(args, 'trainer', None),
                                seed=args.seed, root=getattr(args, 'root', None),
                                prompt_checkpoint=(args.cfg_options or {}).get('model.prompt_checkpoint'))


def config_from_args(args: argparse.Namespace, extra: Mapping[str, Any] | None = None, job: str | None = None) -> Config:
    """Load ``args.config`` with --seed/--device/``extra`` then --cfg-options (last); set --work-dir.

    A ``.yaml`` CONFIG (with ``job``) is a Dassl-style config: converted (promptsync.interop) into the config
    tools/convert_config.py would write, then loaded like a python config; ``args.conversion`` keeps its report.
    """
    options = {k: v for k, v in (('seed', args.seed), ('device', args.device)) if v is not None}
    options.update(extra or {})
    options.update(args.cfg_options)
    from promptsync.interop import is_dassl_config, load_conversion
    if is_dassl_config(args.config):
        if job is None:
            raise ConfigError(f'{args.config}: this tool does not read Dassl-style YAML configs', where=args.config,
                              fix='use tools/train.py or tools/test.py, or convert it with tools/convert_config.py')
        conversion = _dassl_conversion(args, job)
        args.conversion = conversion
        cfg = load_conversion(conversion, options)
        name = '_'.join(Path(p).stem for p in (args.config, getattr(args, 'dataset_config_file', None)) if p)
        cfg.work_dir = args.work_dir or str(Path('work_dirs') / 'dassl' / name)
        if not cfg.get('run_name'):
            cfg.run_name = f'dassl/{name}'   # not the temporary file's name
        return cfg
    if getattr(args, 'dataset_config_file', None) or getattr(args, 'trainer', None) or getattr(args, 'opts', None):
        raise ConfigError(f'--dataset-config-file, --trainer and trailing KEY VALUE options belong to a .yaml '
                          f'CONFIG, but {args.config} is a python config', where=args.config,
                          fix='give the trainer YAML as CONFIG, or use --cfg-options with a python config')
    cfg = load_config(args.config, options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    return cfg


def conversion_hooks(args: argparse.Namespace) -> list:
    """The hook that writes a YAML conversion's report into the run's log (none for a python config)."""
    conversion = getattr(args, 'conversion', None)
    if conversion is None:
        return []
    from promptsync.interop.report_hook import ConversionReportHook
    return [ConversionReportHook(conversion.report_lines())]


def run_cli(main: Callable[[list[str] | None], Any], argv: list[str] | None = None) -> int:
    """Run a tool's ``main``: its exit code, or 1 with a short message for an error (2: a config error).

    The Runner has already written the error and its traceback to the run's log; here it is shown in a few lines
    on stderr, with the traceback only under ``--debug``.
    """
    argv = sys.argv[1:] if argv is None else argv
    debug = '--debug' in argv
    try:
        out = main(argv)
    except KeyboardInterrupt:
        print('interrupted; re-run the same command to resume', file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every error becomes a short message
        if debug:
            traceback.print_exc()
        text = err.message if isinstance(err, PromptsyncError) else f'{type(err).__name__}: {err}'
        print(f'error: {text}', file=sys.stderr)
        log = getattr(err, 'promptsync_log', None)
        if not debug:
            print('(run with --debug for the traceback' + (f'; it is also in {log})' if log else ')'), file=sys.stderr)
        return 2 if isinstance(err, ConfigError) else 1
    return out if isinstance(out, int) else 0
