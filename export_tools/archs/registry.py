"""Explicit table of the networks the toolchain can build, by name.

A checkpoint written by our trainers is a dict:
  {"arch": <name here>, "arch_kwargs": {...}, "state_dict": {...}, "meta": {...}}
and `build(ckpt["arch"], **ckpt["arch_kwargs"])` rebuilds the exportable module.
"""

from __future__ import annotations

import importlib

ARCHS: dict[str, str] = {
    # low light: (image [1,3,H,W] RGB 0..1, ratio [1,1]) -> enhanced [1,3,H,W] 0..1
    "kind_enhancer": "export_tools.archs.kind:KinDEnhancer",
    "unet_enhancer": "export_tools.archs.unet_ll:UNetEnhancer",  # the non-Retinex ablation
    # SR: image [1,3,h,w] RGB 0..1 -> [1,3,s*h,s*w] 0..1
    "srgan_generator": "export_tools.archs.srgan:SRGANGenerator",
    "srgan_leftthomas": "export_tools.archs.srgan_leftthomas:LeftThomasGenerator",
    "repsr": "export_tools.archs.repsr:RepSR",  # plain x4 after merge(); deploy=True loads merged weights
    # discriminators (training only)
    "image_discriminator": "export_tools.archs.srgan:ImageDiscriminator",
    "feature_discriminator": "export_tools.archs.srgan:FeatureDiscriminator",
}


def arch_class(name: str):
    try:
        target = ARCHS[name]
    except KeyError:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHS))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def build(name: str, **kwargs):
    return arch_class(name)(**kwargs)
