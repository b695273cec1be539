"""ResNeSt for MXNet Gluon."""
