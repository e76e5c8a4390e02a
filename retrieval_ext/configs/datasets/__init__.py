"""Default LAVIS yaml files of retrieval_ext (a package so that wheels ship them)."""
