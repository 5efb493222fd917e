"""srcore: the reusable part of the companion to five papers on knowledge distillation for SR.

One module per concern: ``data`` (images, bicubic, datasets), ``metrics`` (PSNR/SSIM
under the standard protocol), ``perceptual`` (NIQE/PI/LPIPS/FID through pyiqa),
``weights`` (pretrained files), ``nets``, ``losses``, ``train``, ``report``,
``config`` (profiles and notebook parameters), ``reproduce`` (batch runner).
"""
__version__ = "0.1.0"
