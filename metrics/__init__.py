"""Metrics: PSNR, SSIM, LPIPS, FID / KID, conditional W2 (CFID), and run accounting."""
from .distribution import fid, gaussian_stats, kid
from .image import psnr, ssim
from .lpips import LPIPS
from .w2 import conditional_w2, conditional_w2_from_moments

__all__ = ["psnr", "ssim", "fid", "kid", "gaussian_stats", "LPIPS", "conditional_w2",
           "conditional_w2_from_moments"]
