"""Colour maths shared by data, models and inference: Y'CbCr conversion of video frames, quantization and dither."""
