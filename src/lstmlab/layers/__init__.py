"""Pure layer functions on pytrees: the LSTM recurrence, Dense, and Keras' initialisers."""
