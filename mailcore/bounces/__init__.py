"""Pure bounce, complaint and auto-reply parsing (no Django imports): bytes in, values out."""

from __future__ import annotations

from mailcore.bounces.parser import parse_bounce, to_json_line
from mailcore.bounces.reasons import classify_reason
from mailcore.bounces.types import BounceRecipient, BounceReport

__all__ = ["BounceRecipient", "BounceReport", "classify_reason", "parse_bounce", "to_json_line"]
