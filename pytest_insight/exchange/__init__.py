"""The exchange: export, import and clear, merge strategies, and where exports go and come from.

Written once over the storage protocol, so every backend exchanges the same
way. Nothing is imported here eagerly: the plugin uses the redactor alone.
"""

from __future__ import annotations
