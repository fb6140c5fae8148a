"""Training: Keras-form Adam, the compiled epoch, reset policies and progress display."""
