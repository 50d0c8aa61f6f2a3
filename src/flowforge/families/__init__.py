"""Flow families: builders that return a ready ``NormalizingFlow``, each declared once."""

from flowforge.families.builders import BUILDERS, iaf, maf, multiscale, nice, nsf, realnvp

__all__ = ["BUILDERS", "iaf", "maf", "multiscale", "nice", "nsf", "realnvp"]
