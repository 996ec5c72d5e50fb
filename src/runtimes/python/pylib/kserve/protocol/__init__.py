"""kserve.protocol: the V2 data types."""
