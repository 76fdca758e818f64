"""Data-protection checks on document stores: markings, personal data, secrets, exposure."""
