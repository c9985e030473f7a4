"""Hypothesis settings for the unit tests."""

from hypothesis import settings

# No deadline: the first example pays for lazy imports (email-validator, phonenumbers), and a
# busy CI machine is slow at random; timing is not what these tests check.
settings.register_profile("crm", deadline=None)
settings.load_profile("crm")
