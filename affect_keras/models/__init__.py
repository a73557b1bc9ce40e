"""Backbones, preprocessing, augmentation and heads, assembled into models that take raw images."""
