"""The storage facade: the documented import paths (``core.storage``, ``core.query``, ``core.models``).

:mod:`pytest_insight.core.storage` opens a storage by URI or profile and
gives it the API of :class:`~pytest_insight.core.facade.Storage`.
``core.query`` and ``core.models`` are kept for the import paths the
specification and earlier releases documented; the code lives in
:mod:`pytest_insight.query` and :mod:`pytest_insight.model`.
"""

from __future__ import annotations
