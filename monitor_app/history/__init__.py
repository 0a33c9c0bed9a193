"""A patient's vital signs over a recent window, downsampled for trend charts."""
