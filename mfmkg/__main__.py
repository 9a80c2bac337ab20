"""``python -m mfmkg`` runs the command line."""

from mfmkg.cli import main

main()
