"""Hidden check variants: other seeds, sizes and tasks. Not part of the student release."""
