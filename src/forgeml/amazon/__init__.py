"""Drop-in replacements for the ``sagemaker.amazon`` modules users import."""
