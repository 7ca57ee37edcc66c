"""Prediction on files and photos: image loading, garment finding, calibration, model
files and export."""
