"""Write ``model_cards/<name>.md`` for every published (upstream) model of the registry.

The registry facts (architecture, nickname, URL, hash, decoder) are copied from
``samzoo/zoo/registry.tsv``; the rest (authors, citations, license, training data, intended
use, limitations) from the FAMILIES table below, which holds what the publications say.
samzoo's own model's card (``samzoo_tiny_lm.md``) is written by hand and never touched here.
Rerun after changing the registry; ``tests/packaging/test_cards.py`` fails until the cards agree.

    python scripts/make_model_cards.py [--check]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from samzoo.zoo.registry import decoder_for, list_models

REPO = Path(__file__).resolve().parents[1]
CARDS = REPO / "model_cards"
GOETTINGEN = "University of Göttingen"

SAM = {"text": "Kirillov et al. Segment Anything. ICCV 2023", "doi": "10.1109/ICCV51070.2023.00371"}
MOBILE_SAM = {"text": "Zhang et al. Faster Segment Anything: Towards Lightweight SAM for Mobile Applications. "
                      "arXiv 2023", "url": "https://arxiv.org/abs/2306.14289"}
MICRO_SAM = {"text": "Archit et al. Segment Anything for Microscopy. Nature Methods 2025",
             "doi": "10.1038/s41592-024-02580-4"}
PATHO_SAM = {"text": "Griebel et al. Segment Anything for Histopathology. arXiv 2025",
             "url": "https://arxiv.org/abs/2502.00408"}
MEDICO_SAM = {"text": "Archit et al. MedicoSAM: Towards foundation models for medical image segmentation. arXiv 2025",
              "url": "https://arxiv.org/abs/2501.11734"}
LM_DATA = [
    {"text": "Edlund et al. LIVECell, a large-scale dataset for label-free live cell segmentation. Nature Methods 2021",
     "doi": "10.1038/s41592-021-01249-6"},
    {"text": "Greenwald et al. Whole-cell segmentation of tissue images with human-level performance (TissueNet). "
             "Nature Biotechnology 2022", "doi": "10.1038/s41587-021-01094-0"},
    {"text": "Spahn et al. DeepBacs for multi-task bacterial image analysis. Communications Biology 2022",
     "doi": "10.1038/s42003-022-03634-z"},
    {"text": "Wolny et al. Accurate and versatile 3D segmentation of plant tissues at cellular resolution (PlantSeg). "
             "eLife 2020", "doi": "10.7554/eLife.57613"},
]
SAM_AUTHORS = [{"name": n, "affiliation": "Meta AI Research, FAIR"} for n in (
    "Alexander Kirillov", "Eric Mintun", "Nikhila Ravi", "Hanzi Mao", "Chloe Rolland", "Laura Gustafson", "Tete Xiao",
    "Spencer Whitehead", "Alexander C. Berg", "Wan-Yen Lo", "Piotr Dollár", "Ross Girshick")]
MOBILE_SAM_AUTHORS = [{"name": n, "affiliation": "Kyung Hee University"} for n in (
    "Chaoning Zhang", "Dongshen Han", "Yu Qiao", "Jung Uk Kim", "Sung-Ho Bae", "Seungkyu Lee", "Choong Seon Hong")]
ARCHIT, PAPE = ({"name": "Anwai Archit", "affiliation": GOETTINGEN, "github_user": "anwai98"},
                {"name": "Constantin Pape", "affiliation": GOETTINGEN, "github_user": "constantinpape"})

# family -> facts; a model's family is the part of its name after the architecture
FAMILIES = {
    "": dict(
        title="Segment Anything", license="Apache-2.0", authors=SAM_AUTHORS, cite=[SAM],
        tags=["segment-anything", "natural-images", "prompt-segmentation"],
        training_data="SA-1B: 11 million licensed natural images with 1.1 billion automatically generated masks "
                      "(Kirillov et al. 2023). No microscopy.",
        intended_use="General-purpose promptable segmentation (points, boxes, masks); the starting point that "
                     "the microscopy models were finetuned from.",
        limitations="Not trained on microscopy: expect over- and under-segmentation of cells and nuclei, and no "
                    "automatic instance segmentation decoder (AIS needs a decoder finetuned with `samzoo finetune`)."),
    "lm": dict(
        title="micro-sam light microscopy", license="CC-BY-4.0", authors=[ARCHIT, PAPE], cite=[MICRO_SAM, SAM, *LM_DATA],
        tags=["segment-anything", "light-microscopy", "cells", "nuclei", "instance-segmentation", "micro-sam"],
        training_data="micro-sam's light-microscopy generalist training set, which includes LIVECell (phase contrast), "
                      "TissueNet (fluorescence tissue), DeepBacs (bacteria), PlantSeg root (confocal) and the NeurIPS "
                      "Cell Segmentation Challenge images; see Archit et al. 2025 and the bioimage.io version notes "
                      "for the complete list of the published version.",
        intended_use="Interactive (points, boxes, masks) and automatic segmentation of cells and nuclei in "
                     "fluorescence, phase-contrast, brightfield and other light microscopy images.",
        limitations="micro-sam's AIS decoder (a torch_em UNETR) has another layout than samzoo's AIS decoder, so "
                    "samzoo uses these weights for prompts and AMG; AIS needs a decoder finetuned with "
                    "`samzoo finetune`. Not meant for electron microscopy or histopathology."),
    "em_organelles": dict(
        title="micro-sam electron microscopy organelles", license="CC-BY-4.0", authors=[ARCHIT, PAPE],
        cite=[MICRO_SAM, SAM],
        tags=["segment-anything", "electron-microscopy", "mitochondria", "nuclei", "organelles", "micro-sam"],
        training_data="micro-sam's electron-microscopy organelle training set: public volume-EM data with mitochondria "
                      "and nuclei annotations (see Archit et al. 2025 for the datasets and their papers).",
        intended_use="Interactive and automatic segmentation of organelles (mainly mitochondria and nuclei) in "
                     "electron microscopy.",
        limitations="Organelles only: not trained for cells or neurites in EM, nor for light microscopy. micro-sam's "
                    "AIS decoder has another layout than samzoo's (see the light-microscopy cards)."),
    "histopathology": dict(
        title="patho-sam histopathology", license="CC-BY-4.0", authors=[{"name": "Titus Griebel", "affiliation": GOETTINGEN},
                                                                      ARCHIT, PAPE],
        cite=[PATHO_SAM, SAM], tags=["segment-anything", "histopathology", "nuclei", "h-and-e", "patho-sam"],
        training_data="patho-sam's training set of public H&E-stained histopathology images with nucleus "
                      "annotations (see Griebel et al. 2025 for the datasets and their papers).",
        intended_use="Interactive and automatic segmentation of nuclei in H&E-stained histopathology (RGB).",
        limitations="RGB brightfield histopathology only. The license is given as micro-sam publishes its models; "
                    "samzoo could not check the upstream page offline. micro-sam's AIS decoder has another layout "
                    "than samzoo's."),
    "medical_imaging": dict(
        title="medico-sam medical imaging", license="CC-BY-4.0",
        authors=[ARCHIT, {"name": "Luca Freckmann", "affiliation": GOETTINGEN}, PAPE],
        cite=[MEDICO_SAM, SAM], tags=["segment-anything", "medical-imaging", "ct", "mri", "medico-sam"],
        training_data="medico-sam's training set of public medical imaging datasets (CT, MRI, X-ray, ultrasound, "
                      "dermoscopy, ...; see Archit et al. 2025, MedicoSAM, for the datasets and their papers).",
        intended_use="Interactive segmentation of organs and lesions in 2D medical images.",
        limitations="Not a microscopy model; listed because micro-sam publishes it. The license is given as "
                    "micro-sam publishes its models; samzoo could not check the upstream page offline."),
}
MOBILE_SAM_NOTE = ("The `vit_t` encoder is MobileSAM's TinyViT (Zhang et al. 2023), distilled from SAM's ViT-H "
                   "on about 1% of SA-1B.")


def family_of(name: str, architecture: str) -> str:
    return name[len(architecture):].lstrip("_")


def card_text(spec) -> str:
    """The Markdown card of one upstream registry model."""
    facts = FAMILIES[family_of(spec.name, spec.architecture)]
    cite, authors = list(facts["cite"]), list(facts["authors"])
    if spec.architecture == "vit_t":
        cite.insert(1, MOBILE_SAM)
        if not family_of(spec.name, spec.architecture):  # MobileSAM itself
            authors = MOBILE_SAM_AUTHORS
    meta = {"name": spec.name, "architecture": spec.architecture, "kind": spec.kind,
            "bioimageio_nickname": spec.bioimageio_nickname or None, "url": spec.url, "hash": spec.hash}
    decoder = decoder_for(spec)
    if decoder is not None:
        meta["decoder"] = {"name": decoder.name, "url": decoder.url, "hash": decoder.hash}
    meta.update(description=f"{facts['title']} ({spec.architecture}): {spec.description}", license=facts["license"],
                authors=authors, cite=cite, tags=facts["tags"])
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=120)
    mobile = f"\n\n{MOBILE_SAM_NOTE}" if spec.architecture == "vit_t" else ""
    nickname = f" (bioimage.io: `{spec.bioimageio_nickname}`)" if spec.bioimageio_nickname else ""
    return f"""---
{front}---
# {spec.name}: {facts['title']}

{spec.description}{nickname}. Published weights, fetched by samzoo from the URL above and checked
against the hash micro-sam publishes (`samzoo fetch {spec.name}`). Generated by
`scripts/make_model_cards.py` from the registry and the publications.{mobile}

## Training data

{facts['training_data']}

## Metrics

As reported by the authors in the publications cited above. samzoo has not measured these weights:
they cannot be downloaded on the project's machines. `samzoo evaluate` measures them on your data.

## Intended use

{facts['intended_use']}

## Limitations

{facts['limitations']}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report cards that differ; exit 1 if any")
    args = parser.parse_args()
    CARDS.mkdir(exist_ok=True)
    stale = []
    for spec in list_models():
        if spec.kind != "sam":  # decoders are described on their SAM model's card; samzoo's own by hand
            continue
        path, text = CARDS / f"{spec.name}.md", card_text(spec)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(path.name)
            if not args.check:
                path.write_text(text, encoding="utf-8")
    print(("stale: " if args.check else "written: ") + (", ".join(stale) or "none"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
