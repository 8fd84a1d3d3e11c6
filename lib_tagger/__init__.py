"""Danbooru-tag prompt upsampling (DanTagGen, Dart v2) and JoyTag interrogation.

The package is host-free: it never imports the WebUI's ``modules``. Heavy libraries
(torch, llama_cpp, transformers) are imported lazily inside the functions that need them.
"""

__version__ = "0.1.0"
