"""The console's words: the shared catalogues of :mod:`wuwang.i18n` (``zh_CN.json``, the
default, and ``en.json``). Python code calls :func:`t`; the browser's clientside code gets
the catalogue of the chosen language in the ``i18n`` store and looks keys up the same way
(``wuwang.t``). ``tests/test_catalogues.py`` and ``tests/dashboard/test_console_i18n.py``
check that both catalogues hold the same keys with the same ``{placeholders}`` and that
every key the code uses exists.
"""

from __future__ import annotations

from wuwang.i18n import DEFAULT_LANG, LANGUAGES, Lang, catalogue, has, lang_of
from wuwang.i18n import text as t

__all__ = ["DEFAULT_LANG", "LANGUAGES", "Lang", "catalogue", "has", "lang_of", "t"]
