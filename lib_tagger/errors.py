"""Which failures the user caused and can fix, and which are unexpected.

An expected failure (an unknown model name, an invalid setting, a missing model folder or file, a
corrupt file, a missing optional package) is reported in one line that says what to do; only an
unexpected one (a bug, out of memory) deserves a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of our errors whose message alone tells the user what to fix (mixed into the usual base)."""


def is_user_error(exc: BaseException) -> bool:
    """True when ``exc`` is a failure the user caused and its message says how to fix it."""
    from .caption.sink import SinkError
    from .formats.options import FormatError
    from .generate.bans import BanPatternTimeout
    from .generate.base import ModelLoadError, PromptTooLongError
    from .interrogate.base import InterrogatorError
    from .interrogate.images import ImageLoadError
    from .interrogate.postprocess import OptionsError
    from .settings import SettingsError

    expected = (UserError, SettingsError, FileNotFoundError, ModelLoadError, PromptTooLongError, InterrogatorError,
                OptionsError, ImageLoadError, SinkError, FormatError, BanPatternTimeout)
    return isinstance(exc, expected)
