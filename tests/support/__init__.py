"""Helpers shared by tests: factories, isolated services, fake releases, gate mutations. No test imports
another test module or conftest; they import from here."""
