"""Batch captioning of image folders."""
