"""A package app for `wasmbuild bundle DIR --module wbpkg` (tests/integration/test_bundle.py)."""
VERSION = "1.0"
