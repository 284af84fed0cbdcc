"""``samzoo package MODEL -o OUTDIR``: bioimage.io model packages of a zoo model or checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from samzoo.errors import InputError, PackageError, UnknownModelError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "package", help="build bioimage.io model packages (AIS and prompts) of a model",
        description="Write bioimage.io (spec 0.5) model packages of MODEL into OUTDIR: MODEL_ais.bioimageio.zip "
                    "(image of any size in, foreground/centre/boundary maps out; pytorch_state_dict + torchscript + onnx "
                    "weights) and "
                    "MODEL_prompt.bioimageio.zip (image + optional prompts in, masks + scores + embeddings out, "
                    "micro-sam's layout), then test each with bioimageio.core (offline).")
    parser.add_argument("model", help="registry name, bioimage.io nickname, .safetensors file or package")
    parser.add_argument("-o", "--output-dir", required=True, help="folder for the package zips")
    parser.add_argument("--kind", action="append", choices=["ais", "prompt"],
                        help="package to build (repeatable; default: both, AIS only for models with a decoder)")
    parser.add_argument("--image", help="real 2D image for test tensors and covers (default: a held-out HeLa "
                                        "frame from ../shared/data)")
    parser.add_argument("--axes", help="axes of --image, e.g. yx or yxc")
    parser.add_argument("--labels", help="instance labels of --image, for the prompt package's test prompts")
    parser.add_argument("--name", help="package name (default: the registry name or the model's own name)")
    parser.add_argument("--mirror", help="local folder or base URL to fetch published weights from")
    parser.add_argument("--author", action="append", metavar="'NAME[:GITHUB_USER]'",
                        help="package author (repeatable; replaces the model card's authors)")
    parser.add_argument("--maintainer", action="append", metavar="'NAME:GITHUB_USER'",
                        help="who answers for the package on bioimage.io (repeatable; default: the model card's "
                             "maintainers). bioimage.io wants a maintainer or an author with a GitHub user: the "
                             "published models' cards name their authors' GitHub users, samzoo's own and "
                             "finetuned models need this option")
    parser.add_argument("--no-test", action="store_true", help="do not run bioimageio test on the packages")
    parser.set_defaults(func=run)


def _read_2d(path: str, axes: str | None) -> np.ndarray:
    from samzoo.io import read_image

    image = read_image(path, axes=axes)
    planes = [d for d in image.dims if d in ("t", "z")]
    if planes:
        raise InputError(f"{path} has axes {''.join(image.dims)}; the package's test image must be 2D "
                         "(select one plane first)")
    return np.asarray(image.transpose("y", "x", ...).values)


def _registry_name(model: str) -> str | None:
    from samzoo.zoo.registry import get_model_spec

    if Path(model).exists():
        return None
    try:
        return get_model_spec(model).name
    except UnknownModelError:
        return None


def run(args: argparse.Namespace) -> int:
    from samzoo.models.load import load_model
    from samzoo.packaging.builder import KINDS, build_packages
    from samzoo.packaging.people import parse_person

    authors = [parse_person(a) for a in args.author or []]
    maintainers = [parse_person(m) for m in args.maintainer or []]
    if any("github_user" not in m for m in maintainers):
        raise InputError("--maintainer needs a GitHub user: 'Name:github_user'")
    model = load_model(args.model, mirror=args.mirror)
    name = args.name or _registry_name(args.model) or model.name or Path(args.model).stem
    image = _read_2d(args.image, args.axes) if args.image else None
    labels = _read_2d(args.labels, None) if args.labels else None
    if labels is not None and image is not None and labels.shape[:2] != image.shape[:2]:
        raise InputError(f"--labels shape {labels.shape} differs from --image {image.shape}")
    kinds = tuple(dict.fromkeys(args.kind)) if args.kind else KINDS
    if kinds == ("ais",) and model.ais_decoder is None:
        raise PackageError(f"{name} has no AIS decoder, so it has no AIS package; build its prompt package "
                           "(--kind prompt) or finetune a decoder with `samzoo finetune`")
    built = build_packages(model, args.output_dir, name=name, image=image, labels=labels, kinds=kinds,
                           image_description=f"{args.image}" if args.image else "", test=not args.no_test,
                           authors=authors or None, maintainers=maintainers or None)
    failed = False
    for package in built:
        status = "not tested" if package.test_status is None else f"bioimageio test: {package.test_status}"
        print(f"{package.kind:7s} {package.path} ({status})")
        if package.test_report:
            print("        " + package.test_report.replace("\n", "\n        "))
        failed |= package.test_status == "failed"
    if any("github_user" in line for p in built for line in p.test_report.splitlines()):
        from samzoo.packaging.people import MISSING_HINT

        print(f"hint: {MISSING_HINT}")
    if model.ais_decoder is None and "ais" in kinds:
        print(f"note: {name} has no AIS decoder, so no AIS package was built")
    return 1 if failed else 0
