"""Read models derived from events alone: charges and renewal state as of any date."""
