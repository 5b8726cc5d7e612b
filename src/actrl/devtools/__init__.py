"""Checks over actrl's own source (run by the tests), not part of any stage."""
