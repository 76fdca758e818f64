"""Detectors of sensitive content: state-secret and classification markings, personal data
with validators and context words, and secrets. Values never leave this package unmasked."""

from scanner.detect.engine import Engine, HyperscanEngine, ReEngine, available_engines, get_engine
from scanner.detect.findings import Finding, TextPart, detect_parts, detect_text, fold, mask
from scanner.detect.rules import RULES, Category, Rule, Sensitivity

__all__ = [
    "RULES",
    "Category",
    "Engine",
    "Finding",
    "HyperscanEngine",
    "ReEngine",
    "Rule",
    "Sensitivity",
    "TextPart",
    "available_engines",
    "detect_parts",
    "detect_text",
    "fold",
    "get_engine",
    "mask",
]
