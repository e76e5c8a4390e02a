"""Datasets for UPSR as ordinary RecBole atomic files: ML-100K genre domains, Amazon 2018."""
